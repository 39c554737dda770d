"""A local server that speaks the ElevenLabs Conversational AI protocol, for the real
``elevenlabs`` SDKs pointed at it (ELEVENLABS.md, appendix): the Python SDK by
``base_url``, the official browser client (``@elevenlabs/client``, vendored under
``companion_ws/static/vendor/``) by a signed URL the hub obtained from it.

It plays the platform's side: it answers the signed-URL GET
(``/v1/convai/conversation/get-signed-url``, checking ``xi-api-key`` and the agent) with
a ``ws://`` URL on itself that carries a one-time ``conversation_signature``; it accepts
``/v1/convai/conversation?agent_id=...`` (negotiating the ``convai`` subprotocol the
browser client asks for, and none for the Python SDK), reads the client's
``conversation_initiation_client_data``, answers ``conversation_initiation_metadata``
once (PCM 16 kHz both ways), and then lets a test script the agent: send what the real
platform sends (``client_tool_call``, ``agent_response``, ``user_transcript``, ``audio``,
``ping``) and read what the client sends back (``client_tool_result``,
``contextual_update``, ``pong``, ``user_audio_chunk``...).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import math
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from companion_ws.demo import events
from companion_ws.integrations.elevenlabs import AgentBridge, BridgeConfig
from companion_ws.tools.registry import ToolRegistry

CONVERSATION_PATH = "/v1/convai/conversation"
#: The agent and the API key of the talk tests' platform (the ``talk_platform`` fixture).
TALK_AGENT = "agent_talk_test"
TALK_API_KEY = "xi-test-key-" + "k" * 24
#: The subprotocol the browser client offers (its WebSocketConnection's MAIN_PROTOCOL).
BROWSER_SUBPROTOCOL = "convai"
#: PCM16 mono at 16 kHz, the audio format announced in the metadata.
SAMPLE_RATE = 16_000
SIGNED_URL_PATH = "/v1/convai/conversation/get-signed-url"

Frame = dict[str, Any]
_NOISE = frozenset({"user_audio_chunk", "pong"})


def kind_of(message: Frame) -> str:
    """A client message's type (user audio chunks carry none)."""
    if "type" in message:
        return str(message["type"])
    return "user_audio_chunk" if "user_audio_chunk" in message else "?"


class FakeConversation:
    """One conversation the SDK opened, seen from the agent's side."""

    def __init__(self, ws: ServerConnection, query: dict[str, str], init: Frame) -> None:
        self.ws = ws
        self.query = query
        self.init = init
        self.conversation_id = f"conv_{uuid.uuid4().hex[:12]}"
        #: Every message the SDK sent after its init message, in order.
        self.log: list[Frame] = []
        self._arrived = asyncio.Condition()
        self._read = 0
        self._event_ids = itertools.count(1)
        self.closed = asyncio.Event()

    @property
    def dynamic_variables(self) -> dict[str, Any]:
        value = self.init.get("dynamic_variables") or {}
        return dict(value)

    async def _receive(self, message: Frame) -> None:
        async with self._arrived:
            self.log.append(message)
            self._arrived.notify_all()

    async def _closed(self) -> None:
        self.closed.set()
        async with self._arrived:
            self._arrived.notify_all()

    # ------------------------------------------------------------ agent -> SDK

    async def send(self, frame: Frame) -> None:
        await self.ws.send(json.dumps(frame))

    async def call_tool(
        self, tool_name: str, parameters: dict[str, Any], tool_call_id: str | None = None
    ) -> str:
        """Send a ``client_tool_call``; returns its ``tool_call_id``."""
        call_id = tool_call_id or f"toolu_{uuid.uuid4().hex[:16]}"
        await self.send(
            events.client_tool_call(tool_name, call_id, parameters, next(self._event_ids))
        )
        return call_id

    async def say(self, text: str) -> None:
        await self.send(events.agent_response(text, next(self._event_ids)))

    async def user_said(self, text: str) -> None:
        await self.send(events.user_transcript(text, next(self._event_ids)))

    async def audio(self, seconds: float = 0.5) -> None:
        """Agent speech: ``seconds`` of a quiet 440 Hz tone as one ``audio`` event (the
        browser client plays it, and says the agent is speaking meanwhile)."""
        samples = int(SAMPLE_RATE * seconds)
        tone = (round(800 * math.sin(2 * math.pi * 440 * i / SAMPLE_RATE)) for i in range(samples))
        pcm = b"".join(v.to_bytes(2, "little", signed=True) for v in tone)
        await self.send(
            {
                "type": "audio",
                "audio_event": {
                    "audio_base_64": base64.b64encode(pcm).decode(),
                    "event_id": next(self._event_ids),
                },
            }
        )

    async def speak(self, text: str, seconds: float = 0.0) -> None:
        """One agent turn: its audio (if ``seconds``), then its text."""
        if seconds:
            await self.audio(seconds)
        await self.say(text)

    async def ping(self) -> int:
        event_id = next(self._event_ids)
        await self.send({"type": "ping", "ping_event": {"event_id": event_id, "ping_ms": None}})
        return event_id

    async def close(self, code: int = 1000, reason: str = "bye") -> None:
        await self.ws.close(code, reason)

    # ------------------------------------------------------------ SDK -> agent

    async def wait_for(
        self,
        predicate: Callable[[Frame], bool],
        timeout: float = 10.0,
        *,
        start: int = 0,
    ) -> Frame:
        """The first logged message from index ``start`` on that matches (waiting for it)."""
        async with asyncio.timeout(timeout), self._arrived:
            index = start
            while True:
                while index < len(self.log):
                    if predicate(self.log[index]):
                        return self.log[index]
                    index += 1
                if self.closed.is_set():
                    raise AssertionError(f"the conversation closed; it sent {self.log!r}")
                await self._arrived.wait()

    async def next(self, *kinds: str, timeout: float = 10.0) -> Frame:
        """The next unread message of one of these kinds (default: any but user audio
        and pongs); the ones passed over are read too."""
        async with asyncio.timeout(timeout), self._arrived:
            while True:
                while self._read < len(self.log):
                    message = self.log[self._read]
                    self._read += 1
                    kind = kind_of(message)
                    if kind in kinds or (not kinds and kind not in _NOISE):
                        return message
                if self.closed.is_set():
                    raise AssertionError(f"the conversation closed; it sent {self.log!r}")
                await self._arrived.wait()

    async def tool_result(self, tool_call_id: str, timeout: float = 10.0) -> Frame:
        return await self.wait_for(
            lambda m: (
                m.get("type") == "client_tool_result" and m.get("tool_call_id") == tool_call_id
            ),
            timeout,
        )

    async def contextual_update(
        self, predicate: Callable[[str], bool], timeout: float = 10.0
    ) -> str:
        """The text of the first ``contextual_update`` whose text matches."""
        message = await self.wait_for(
            lambda m: m.get("type") == "contextual_update" and predicate(str(m.get("text"))),
            timeout,
        )
        return str(message["text"])

    def sent(self, kind: str) -> list[Frame]:
        return [m for m in self.log if kind_of(m) == kind]


class FakeElevenLabs:
    """The platform: ``async with FakeElevenLabs() as fake: conv = await fake.conversation()``."""

    def __init__(self, *, agent_id: str = "agent_test", api_key: str = "test-key") -> None:
        self.agent_id = agent_id
        self.api_key = api_key
        self.port = 0
        self.signed_url_requests: list[dict[str, str]] = []
        self.handshakes: list[dict[str, str]] = []
        self.conversations: list[FakeConversation] = []
        self._new: asyncio.Queue[FakeConversation] = asyncio.Queue()
        self._server: Server | None = None
        self._signatures: set[str] = set()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def bridge(
        self,
        hub_url: str,
        session_id: str,
        token: str,
        tools: ToolRegistry | None = None,
        **options: Any,
    ) -> AgentBridge:
        """A bridge of this platform's agent (its key; no keepalive pings unless
        ``options`` say) to ``session_id``, with ``tools`` (default: the shipping pack)."""
        config = BridgeConfig(
            agent_id=self.agent_id,
            session_id=session_id,
            hub_url=hub_url,
            token=token,
            api_key=self.api_key,
            base_url=self.base_url,
            **{"keepalive": 0, **options},
        )
        if tools is None:
            tools = ToolRegistry.from_modules(["companion_ws.tools.shipping"])
        return AgentBridge(config, tools)

    async def __aenter__(self) -> FakeElevenLabs:
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            process_request=self._process_request,
            select_subprotocol=_select_subprotocol,
            max_size=16 * 1024 * 1024,
        )
        self.port = next(iter(self._server.sockets)).getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 5)

    async def conversation(self, timeout: float = 15.0) -> FakeConversation:
        """The next conversation an SDK opens."""
        return await asyncio.wait_for(self._new.get(), timeout)

    # ------------------------------------------------------------ HTTP

    def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        url = urlsplit(request.path)
        if url.path == SIGNED_URL_PATH:
            self.signed_url_requests.append(dict(request.headers.raw_items()))
            query = {k: v[-1] for k, v in parse_qs(url.query).items()}
            if request.headers.get("xi-api-key") != self.api_key:
                return _json_response(401, {"detail": {"status": "invalid_api_key"}})
            if query.get("agent_id") != self.agent_id:
                return _json_response(404, {"detail": {"status": "agent_not_found"}})
            signature = uuid.uuid4().hex
            self._signatures.add(signature)
            signed = (
                f"ws://127.0.0.1:{self.port}{CONVERSATION_PATH}"
                f"?agent_id={self.agent_id}&conversation_signature={signature}"
            )
            return _json_response(200, {"signed_url": signed})
        if url.path != CONVERSATION_PATH:
            return _json_response(404, {"detail": "not found"})
        return None

    # ------------------------------------------------------------ WebSocket

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        self.handshakes.append(dict(ws.request.headers.raw_items()))
        url = urlsplit(ws.request.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if query.get("agent_id") != self.agent_id:
            await ws.close(1008, "unknown agent")
            return
        signature = query.get("conversation_signature")
        if signature is not None and signature not in self._signatures:
            await ws.close(1008, "invalid signature")
            return
        try:
            init = json.loads(await asyncio.wait_for(ws.recv(), 10))
        except (TimeoutError, ConnectionClosed):
            return
        if init.get("type") != "conversation_initiation_client_data":
            await ws.close(1008, "invalid_message")
            return
        conv = FakeConversation(ws, query, init)
        await ws.send(
            json.dumps(
                {
                    "type": "conversation_initiation_metadata",
                    "conversation_initiation_metadata_event": {
                        "conversation_id": conv.conversation_id,
                        "agent_output_audio_format": "pcm_16000",
                        "user_input_audio_format": "pcm_16000",
                    },
                }
            )
        )
        self.conversations.append(conv)
        self._new.put_nowait(conv)
        try:
            async for raw in ws:
                await conv._receive(json.loads(raw))
        except ConnectionClosed:
            pass
        finally:
            await conv._closed()


def _select_subprotocol(connection: ServerConnection, offered: Any) -> Any:
    """``convai`` when the browser client offers it; no subprotocol for the Python SDK,
    which offers none."""
    return BROWSER_SUBPROTOCOL if BROWSER_SUBPROTOCOL in offered else None


def _json_response(status: int, body: Any) -> Response:
    data = json.dumps(body).encode()
    reason = {200: "OK", 401: "Unauthorized", 404: "Not Found"}.get(status, "Error")
    headers = Headers({"Content-Type": "application/json", "Content-Length": str(len(data))})
    return Response(status, reason, headers, data)
