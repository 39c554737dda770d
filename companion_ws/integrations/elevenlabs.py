"""The ElevenLabs voice-agent bridge: one ElevenLabs conversation, one hub session.

    ElevenLabs agent  <-- AsyncConversation -->  AgentBridge  <-- SessionLink -->  hub

The first adapter on the voice-platform seam, :mod:`~companion_ws.integrations.platform`:
the link holds the hub side (frames, tools once per id, what the agent is told); this
module maps ElevenLabs' conversation onto it.

- **agent -> screens.** Every tool of the hub's registry is a ``ClientTools`` handler
  that forwards the agent's ``client_tool_call`` to the hub as a ``client_tool_call``
  over the bridge's own connection (``client="agent"``). The hub runs it once per
  ``tool_call_id`` and broadcasts its update to every screen; the agent gets the
  hub's result, a JSON string.
- **the conversation -> screens.** What the user and the agent say, and what the
  agent is doing, are published as docs/protocol.md section 13 frames (``transcript``,
  ``agent_state``) over the same connection, in order; the mapping from ElevenLabs'
  events is :mod:`~companion_ws.integrations.voice_frames`.
- **screens -> agent.** A state change or ``contextual_update`` made by anyone else (a
  screen, a backend) is told to the agent as an ElevenLabs ``contextual_update`` in
  plain words, by the :class:`~companion_ws.integrations.narrator.Narrator`, which
  reads the state from the hub client's mirror (the bridge keeps no copy of its own).
- **resume.** Started on a session that already has state, or back on the hub after
  missing events (a ``resync_required``, or a reconnect that replayed changes made by
  others), the bridge first tells the agent ``ui_state.create_session_context``.

The SDK's types are adapted in :mod:`~companion_ws.integrations.elevenlabs_sdk`.

The conversation carries ``dynamic_variables={"session_id": ...}``: bind each tool's
``session_id`` parameter to that variable in the agent's configuration
(``companion-ws tools --elevenlabs`` prints the definitions).

Nothing here reads the environment: the API key and base URL come in the config.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Literal

from companion_ws.client import CompanionClient
from companion_ws.integrations.elevenlabs_sdk import (
    AsyncAudioInterface,
    ClientTools,
    Conversation,
    ConversationInitiationData,
    DisconnectionDetails,
    ElevenLabs,
    NullAudioInterface,
)
from companion_ws.integrations.narrator import AGENT_SENDER_PREFIX, Narrator, describe_update
from companion_ws.integrations.platform import FLUSH_TIMEOUT, LinkError, SessionLink, Token
from companion_ws.integrations.voice_frames import ConversationFrames
from companion_ws.tools.registry import ToolRegistry

__all__ = [
    "AGENT_SENDER_PREFIX",
    "FLUSH_TIMEOUT",
    "AgentBridge",
    "BridgeConfig",
    "BridgeError",
    "ToolCallFailed",
    "describe_update",
]

log = logging.getLogger("companion_ws.bridge")

AudioMode = Literal["null", "text", "device"]


class BridgeError(LinkError):
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
    forward_transcripts: bool = True  # publish the conversation as transcript frames


class AgentBridge:
    """Runs one conversation against one session until the conversation ends, the
    session ends, or :meth:`stop` is called."""

    def __init__(self, config: BridgeConfig, tools: ToolRegistry) -> None:
        self.config = config
        self.tools = tools
        self.link: SessionLink | None = None
        self.conversation: Conversation | None = None
        self.audio: NullAudioInterface | None = None
        self.disconnect: DisconnectionDetails | None = None
        self.outcome = "running"
        self.frames = ConversationFrames(transcripts=config.forward_transcripts)
        self._stop = asyncio.Event()

    @property
    def hub(self) -> CompanionClient | None:
        """The bridge's hub client (the link's)."""
        return self.link.client if self.link is not None else None

    @property
    def narrator(self) -> Narrator | None:
        return self.link.narrator if self.link is not None else None

    @property
    def state(self) -> dict[str, Any]:
        """The session state: the hub client's mirror (there is no other copy)."""
        return self.link.state if self.link is not None else {}

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
        link = SessionLink(cfg.hub_url, cfg.token, cfg.session_id, frames=self.frames)
        self.link = link
        try:
            try:
                await link.open()
            except LinkError as exc:
                raise BridgeError(str(exc)) from None
            await self._converse(link)
        finally:
            await self._shutdown()
        return self.outcome

    async def _converse(self, link: SessionLink) -> None:
        hub = link.client
        conversation = self._conversation()
        self.conversation = conversation
        pump = self._spawn(link.watch())
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
        if pump in done and link.session_ended:
            self.outcome = "session_ended"
            return
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

    def _conversation(self) -> Conversation:
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
        callbacks: dict[str, Any] = {
            "callback_disconnect": self._on_disconnect,
            "callback_agent_response": self._agent_said,
            "callback_agent_response_correction": self._agent_corrected,
            "callback_agent_chat_response_part": self._agent_part,
            "callback_user_transcript": self._user_said,
        }
        return Conversation(
            client,
            cfg.agent_id,
            cfg.user_id,
            requires_auth=cfg.requires_auth,
            audio_interface=audio,
            config=ConversationInitiationData(
                # The hub's signed capability for this session (docs/protocol.md section 11):
                # the server tools and the post-call webhook accept nothing else.
                dynamic_variables={"session_id": self._capability()},
                conversation_config_override=override,
            ),
            client_tools=tools,
            on_message=self._on_message,
            **callbacks,
        )

    def _capability(self) -> str:
        capability = self.link.capability() if self.link is not None else None
        if capability is None:
            raise BridgeError(
                "the hub sent no agent capability: connect with a token that may act as the "
                "agent (the session's owner, a service or an admin)"
            )
        return capability

    async def _shutdown(self) -> None:
        conversation = self.conversation
        if conversation is not None:
            with contextlib.suppress(Exception):
                await conversation.end_session()  # type: ignore[no-untyped-call]
            if conversation._task is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(asyncio.shield(conversation._task), 5)
        if self.link is not None:
            await self.link.close(left=conversation is not None)
        log.info("bridge: %s", self.outcome)

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        assert self.link is not None
        return self.link.spawn(coro)

    # ------------------------------------------------------------ agent -> hub

    def _tool_handler(self, tool_name: str) -> Callable[[dict[str, Any]], Awaitable[str]]:
        async def handle(parameters: dict[str, Any]) -> str:
            params = dict(parameters)
            call_id = str(params.pop("tool_call_id", "") or "") or None
            assert self.link is not None
            answer = await self.link.call_tool(tool_name, call_id, params)
            if answer.is_error:
                raise ToolCallFailed(answer.text)
            return answer.text

        return handle

    # What the conversation looks like on the screens (voice_frames documents the
    # mapping), published in order over the bridge's connection.

    async def _on_message(self, message: dict[str, Any]) -> None:
        match message.get("type"):
            case "conversation_initiation_metadata":
                self._publish(self.frames.ready())
            case "interruption":
                self._publish(self.frames.interrupted())
            case "tentative_user_transcript":
                event = message.get("tentative_user_transcription_event") or {}
                text = event.get("user_transcript") if isinstance(event, dict) else None
                if isinstance(text, str) and text:
                    self._publish(self.frames.user_partial(text))

    async def _user_said(self, text: str) -> None:
        self._publish(self.frames.user_said(text))

    async def _agent_said(self, text: str) -> None:
        self._publish(self.frames.agent_said(text))

    async def _agent_corrected(self, original: str, corrected: str) -> None:
        self._publish(self.frames.corrected(original, corrected))

    async def _agent_part(self, text: str, kind: Any) -> None:
        self._publish(self.frames.agent_part(text, str(getattr(kind, "value", kind))))

    def _publish(self, frames: list[dict[str, Any]]) -> None:
        """Queue frames for the screens, without holding up the agent."""
        if self.link is not None:
            self.link.publish(frames)

    async def _on_disconnect(self, details: DisconnectionDetails) -> None:
        self.disconnect = details
        log.info(
            "bridge: the conversation closed (%s, %s %s)",
            details.reason,
            details.close_code,
            details.close_reason,
        )

    # ------------------------------------------------------------ hub -> agent

    async def _talk(self, conversation: Conversation) -> None:
        """Send the agent what the link has to tell it, in order, once it is ready;
        then keep a voice conversation fed with silence."""
        link = self.link
        assert link is not None
        await conversation.ready.wait()
        keepalive: asyncio.Task[None] | None = None
        while True:
            if keepalive is None and link.nothing_to_tell():
                keepalive = self._spawn(self._keepalive())
            text = await link.told()
            await conversation.send_contextual_update(text)
            log.debug("bridge: told the agent %r", text)

    async def _keepalive(self) -> None:
        audio, every = self.audio, self.config.keepalive
        if audio is None or every <= 0:
            return
        while True:
            await asyncio.sleep(every)
            await audio.silence()
