"""The ElevenLabs voice-agent bridge: one ElevenLabs conversation, one hub session.

    ElevenLabs agent  <-- AsyncConversation -->  AgentBridge  <-- CompanionClient -->  hub

- **agent -> screens.** Every tool of the hub's registry is a ``ClientTools`` handler
  that forwards the agent's ``client_tool_call`` to the hub as a ``client_tool_call``
  over the bridge's own connection (``client="agent"``). The hub runs it once per
  ``tool_call_id`` and broadcasts its update to every screen; the agent gets the
  hub's result, a JSON string.
- **screens -> agent.** A state change or ``contextual_update`` made by anyone else (a
  screen, a backend) is told to the agent as an ElevenLabs ``contextual_update`` in
  plain words (``ui_state.describe_change``).
- **resume.** Started on a session that already has state, or back on the hub after
  missing events (a ``resync_required``, or a reconnect that replayed changes made by
  others), the bridge first tells the agent ``ui_state.create_session_context``.

The conversation carries ``dynamic_variables={"session_id": ...}``: bind each tool's
``session_id`` parameter to that variable in the agent's configuration
(``companion-ws tools --elevenlabs`` prints the definitions).

Nothing here reads the environment: the API key and base URL come in the config.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from companion_ws.client import ClientError, CompanionClient
from companion_ws.tools.registry import ToolRegistry
from ui_state import create_session_context, describe_change, merge_patch

with warnings.catch_warnings():
    # elevenlabs 2.78 annotates AsyncConversation with a deprecated websockets alias.
    warnings.filterwarnings("ignore", "websockets.WebSocketClientProtocol", DeprecationWarning)
    from elevenlabs.client import ElevenLabs
    from elevenlabs.conversational_ai.conversation import (
        AsyncAudioInterface,
        AsyncConversation,
        ClientTools,
        ConversationInitiationData,
        DisconnectionDetails,
    )

log = logging.getLogger("companion_ws.bridge")

AudioMode = Literal["null", "text", "device"]
Token = str | Callable[[], str | Awaitable[str]]

#: Senders whose events the agent caused itself (ElevenLabs server tools, post-call).
AGENT_SENDER_PREFIX = "elevenlabs:"
_DATA_MAX = 600
_SAMPLE_RATE = 16_000  # the agent's default input: PCM16 mono at 16 kHz


class BridgeError(Exception):
    """The bridge cannot run (the session is not there, say)."""


class ToolCallFailed(Exception):
    """An ``is_error`` result: the SDK sends ``str(exc)`` (the hub's JSON) to the agent."""


@dataclass(frozen=True)
class BridgeConfig:
    agent_id: str
    session_id: str
    hub_url: str = "ws://127.0.0.1:8000"
    token: Token = ""
    api_key: str | None = None
    base_url: str | None = None  # the ElevenLabs API, e.g. https://api.elevenlabs.io
    requires_auth: bool = False  # a private agent: a signed URL is fetched with the key
    audio: AudioMode = "null"
    keepalive: float = 5.0  # seconds between silence chunks in "null" mode; 0 = never
    user_id: str | None = None
    forward_transcripts: bool = True  # publish agent_response/user_transcript to the hub


class NullAudioInterface(AsyncAudioInterface):
    """No microphone, no speaker. :meth:`silence` feeds the agent a chunk of silence, so
    a voice-mode conversation is not ended for want of input."""

    def __init__(self) -> None:
        self._input: Callable[[bytes], Awaitable[None]] | None = None

    async def start(self, input_callback: Callable[[bytes], Awaitable[None]]) -> None:
        self._input = input_callback

    async def stop(self) -> None:
        self._input = None

    async def output(self, audio: bytes) -> None:
        pass

    async def interrupt(self) -> None:
        pass

    async def silence(self, seconds: float = 0.25) -> None:
        if self._input is not None:
            await self._input(b"\x00\x00" * int(_SAMPLE_RATE * seconds))


class _Conversation(AsyncConversation):
    """``AsyncConversation`` that says when the agent is ready (its
    ``conversation_initiation_metadata`` arrived), so nothing is sent before."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ready = asyncio.Event()

    async def _handle_message(self, message: Any, ws: Any) -> None:
        await super()._handle_message(message, ws)  # type: ignore[no-untyped-call]
        if isinstance(message, dict) and message.get("type") == "conversation_initiation_metadata":
            self.ready.set()

    @property
    def conversation_id(self) -> str | None:
        value = self._conversation_id
        return str(value) if value is not None else None


def describe_update(frame: Mapping[str, Any]) -> str:
    """A ``contextual_update`` from a screen or a backend, in words for the agent."""
    sender = str(frame.get("sender") or "")
    source = "the backend" if sender.startswith("backend") else "the screen"
    words = f"Update from {source}: {frame.get('text')}"
    data = frame.get("data")
    if data not in (None, {}, [], ""):
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        words += f" ({text if len(text) <= _DATA_MAX else text[:_DATA_MAX] + '...'})"
    return words


class AgentBridge:
    """Runs one conversation against one session until the conversation ends, the
    session ends, or :meth:`stop` is called."""

    def __init__(self, config: BridgeConfig, tools: ToolRegistry) -> None:
        self.config = config
        self.tools = tools
        self.state: dict[str, Any] = {}
        self.version = 0
        self.hub: CompanionClient | None = None
        self.conversation: _Conversation | None = None
        self.audio: NullAudioInterface | None = None
        self.disconnect: DisconnectionDetails | None = None
        self.outcome = "running"
        self._own: set[str] = set()
        self._to_agent: asyncio.Queue[str] = asyncio.Queue()
        self._catching_up = False
        self._missed = False
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()

    def stop(self) -> None:
        """Ask the bridge to end the conversation and leave (SIGINT/SIGTERM)."""
        self.outcome = "stopped"
        self._stop.set()

    # ------------------------------------------------------------ running

    async def run(self) -> str:
        """Run until done; returns why it ended: ``stopped``, ``conversation_ended`` or
        ``session_ended``. Raises :class:`BridgeError` (or the hub client's error)
        when it cannot start."""
        cfg = self.config
        hub = CompanionClient(
            cfg.hub_url, token=cfg.token, session_id=cfg.session_id, client="agent"
        )
        self.hub = hub
        events = hub.events()  # made before the connect, so no frame falls in between
        try:
            await hub.start()
            if hub.session_id != cfg.session_id:
                raise BridgeError(
                    f"session {cfg.session_id!r} is not live on the hub (it has ended, "
                    "expired or never existed)"
                )
            if hub.connection_id:
                self._own.add(hub.connection_id)
            self._sync_from(hub)
            if self.state:
                self._tell(create_session_context(self.state))
            await self._converse(hub, events)
        finally:
            await self._shutdown()
        return self.outcome

    async def _converse(self, hub: CompanionClient, events: AsyncIterator[dict[str, Any]]) -> None:
        conversation = self._conversation()
        self.conversation = conversation
        pump = self._spawn(self._pump(events))
        await conversation.start_session()  # type: ignore[no-untyped-call]
        log.info(
            "bridge: session %s, agent %s: conversation starting",
            self.config.session_id,
            self.config.agent_id,
        )
        talk = self._spawn(self._talk(conversation))
        ended = self._spawn(conversation.wait_for_session_end())
        stopped = self._spawn(self._stop.wait())
        done, _ = await asyncio.wait({pump, talk, ended, stopped}, return_when="FIRST_COMPLETED")
        if self._stop.is_set():
            return  # stop(), or the session ended: the outcome says which
        if talk in done and conversation._should_stop.is_set():
            # Telling the agent failed because the conversation is ending: let it end.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(ended), 5)
            done = {ended} if ended.done() else done
        if ended in done:
            self._ended(ended)
        elif pump in done:
            self.outcome = "hub_closed"
            raise BridgeError(
                f"the hub closed the connection for good ({hub.closed_code} {hub.closed_reason})"
            )
        else:
            self.outcome = "failed"
            raise BridgeError(f"telling the agent failed: {talk.exception()!r}")

    def _ended(self, ended: asyncio.Task[Any]) -> None:
        """The conversation is over: ended by the agent, or failed (an exception, or a
        close that was not normal, such as 1008 ``override_error``)."""
        failure = ended.exception()
        details = self.disconnect
        if failure is None and (details is None or details.reason != "error"):
            self.outcome = "conversation_ended"
            return
        self.outcome = "conversation_failed"
        if details is not None and details.close_code is not None:
            why = f"{details.close_code} {details.close_reason or details.message or ''}"
        else:
            why = repr(failure) if failure is not None else "the connection failed"
        raise BridgeError(f"the ElevenLabs conversation failed: {why.rstrip()}") from failure

    def _conversation(self) -> _Conversation:
        cfg = self.config
        client = ElevenLabs(api_key=cfg.api_key, base_url=cfg.base_url)
        tools = ClientTools(loop=asyncio.get_running_loop())
        for t in self.tools:
            tools.register(t.name, self._tool_handler(t.name), is_async=True)
        override: dict[str, Any] = {}
        audio: AsyncAudioInterface | None
        if cfg.audio == "null":
            audio = self.audio = NullAudioInterface()
        elif cfg.audio == "device":
            from elevenlabs.conversational_ai.default_audio_interface import (
                AsyncDefaultAudioInterface,
            )

            audio = AsyncDefaultAudioInterface()  # type: ignore[no-untyped-call]
        else:
            audio = None  # chat mode: the agent must allow the text_only override
            override = {"conversation": {"text_only": True}}
        callbacks: dict[str, Any] = {"callback_disconnect": self._on_disconnect}
        if cfg.forward_transcripts:
            callbacks["callback_agent_response"] = self._agent_said
            callbacks["callback_user_transcript"] = self._user_said
        return _Conversation(
            client,
            cfg.agent_id,
            cfg.user_id,
            requires_auth=cfg.requires_auth,
            audio_interface=audio,
            config=ConversationInitiationData(
                dynamic_variables={"session_id": cfg.session_id},
                conversation_config_override=override,
            ),
            client_tools=tools,
            **callbacks,
        )

    async def _shutdown(self) -> None:
        conversation = self.conversation
        if conversation is not None:
            with contextlib.suppress(Exception):
                await conversation.end_session()  # type: ignore[no-untyped-call]
            if conversation._task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(conversation._task), 5)
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self.hub is not None:
            await self.hub.close()
        log.info("bridge: %s", self.outcome)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------ agent -> hub

    def _tool_handler(self, tool_name: str) -> Callable[[dict[str, Any]], Awaitable[str]]:
        async def handle(parameters: dict[str, Any]) -> str:
            params = dict(parameters)
            call_id = str(params.pop("tool_call_id", "") or f"bridge_{uuid.uuid4().hex}")
            assert self.hub is not None
            try:
                reply = await self.hub.call_tool(tool_name, call_id, params)
            except ClientError as exc:
                raise ToolCallFailed(_error_json(exc.message, exc.code)) from None
            except Exception as exc:
                raise ToolCallFailed(_error_json(f"the hub did not answer: {exc}")) from None
            result = reply.get("result")
            text = result if isinstance(result, str) else json.dumps(result)
            if reply.get("is_error"):
                raise ToolCallFailed(text)
            return text

        return handle

    async def _agent_said(self, text: str) -> None:
        self._publish("agent_response", {"text": text})

    async def _user_said(self, text: str) -> None:
        self._publish("user_transcript", {"text": text})

    def _publish(self, text: str, data: dict[str, Any]) -> None:
        """Let the screens show the conversation, without holding up the agent."""
        hub = self.hub
        if hub is None or not hub.connected:
            return

        async def send() -> None:
            try:
                await hub.contextual_update(text, data)
            except Exception as exc:
                log.warning("bridge: forwarding %s failed: %s", text, exc)

        self._spawn(send())

    async def _on_disconnect(self, details: DisconnectionDetails) -> None:
        self.disconnect = details
        log.info(
            "bridge: the conversation closed (%s, %s %s)",
            details.reason,
            details.close_code,
            details.close_reason,
        )

    # ------------------------------------------------------------ hub -> agent

    def _tell(self, text: str) -> None:
        self._to_agent.put_nowait(text)

    async def _talk(self, conversation: _Conversation) -> None:
        """Send the agent what the bridge has to tell it, in order, once it is ready;
        then keep a voice conversation fed with silence."""
        await conversation.ready.wait()
        keepalive: asyncio.Task[None] | None = None
        while True:
            if keepalive is None and self._to_agent.empty():
                keepalive = self._spawn(self._keepalive())
            text = await self._to_agent.get()
            await conversation.send_contextual_update(text)
            log.debug("bridge: told the agent %r", text)

    async def _keepalive(self) -> None:
        audio, every = self.audio, self.config.keepalive
        if audio is None or every <= 0:
            return
        while True:
            await asyncio.sleep(every)
            await audio.silence()

    def _sync_from(self, hub: CompanionClient) -> None:
        """Take the hub client's mirror of the state (current as of its last frame)."""
        self.state = dict(hub.state)
        self.version = hub.version

    def _foreign(self, frame: Mapping[str, Any]) -> bool:
        """Made by someone else than this bridge (or the agent's own server tools)."""
        sender = frame.get("sender")
        if isinstance(sender, str) and sender.startswith(AGENT_SENDER_PREFIX):
            return False
        return sender not in self._own

    async def _pump(self, events: AsyncIterator[dict[str, Any]]) -> None:
        async for frame in events:
            self._on_frame(frame)
            if self._stop.is_set():
                return

    def _on_frame(self, frame: Mapping[str, Any]) -> None:
        kind = frame.get("type")
        if kind == "session_joined":
            connection = frame.get("connection_id")
            if connection in self._own:
                return  # the first welcome
            if isinstance(connection, str):
                self._own.add(connection)
            if frame.get("session_id") != self.config.session_id:
                self.outcome = "session_ended"
                self._stop.set()
                return
            # Back after a reconnect: the replay (or a snapshot) follows.
            self._catching_up, self._missed = True, False
        elif kind == "resumed":
            if self._catching_up and self._missed:
                self._tell(create_session_context(self.state))
            self._catching_up = False
        elif kind == "resync_required":
            self.state = dict(frame.get("state") or {})
            self.version = int(frame.get("version") or 0)
            self._catching_up = False
            self._tell(create_session_context(self.state))
        elif kind == "session_state_updated":
            self._on_state_update(frame)
        elif kind == "contextual_update":
            if self._foreign(frame):
                if self._catching_up:
                    self._missed = True
                else:
                    self._tell(describe_update(frame))
        elif kind == "session_ended":
            self.outcome = "session_ended"
            self._stop.set()

    def _on_state_update(self, frame: Mapping[str, Any]) -> None:
        version = frame.get("version")
        patch = frame.get("patch")
        if not isinstance(version, int) or version <= self.version:
            return  # already in the state the bridge holds
        if version != self.version + 1 or not isinstance(patch, Mapping):
            assert self.hub is not None  # a change the bridge never saw: start from the state
            self._sync_from(self.hub)
            self._tell(create_session_context(self.state))
            return
        self.state = merge_patch(self.state, patch)
        self.version = version
        if not self._foreign(frame):
            return
        if self._catching_up:
            self._missed = True
            return
        text = describe_change(patch, self.state)
        if text:
            self._tell(text)


def _error_json(message: str, code: str | None = None) -> str:
    body: dict[str, Any] = {"error": message}
    if code:
        body["code"] = code
    return json.dumps(body)
