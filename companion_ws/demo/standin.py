"""A local stand-in for the ElevenLabs Conversational AI platform, for the demo: the
real ``elevenlabs`` SDK connects to it by ``base_url`` (ELEVENLABS.md, appendix) and it
plays the agent's side from a script instead of a language model. It says so: every
conversation opens with the agent saying it is a scripted demo.

It accepts ``/v1/convai/conversation?agent_id=...`` (from the Python SDK, and from the
page's official browser client, which first asks ``get-signed-url`` as the hub does for
it: the demo's page can talk too, docs/protocol.md section 17), reads the SDK's
``conversation_initiation_client_data``, answers ``conversation_initiation_metadata``,
then runs the script with a :class:`ScriptedConversation`: what the platform sends
(``user_transcript``, ``agent_response``, ``agent_response_correction``,
``interruption``, ``client_tool_call``) and what the SDK sends back
(``client_tool_result``, ``contextual_update``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response
from websockets.typing import Subprotocol

from companion_ws.demo import events

__all__ = ["CONVERSATION_PATH", "ScriptedConversation", "StandIn"]

log = logging.getLogger("companion_ws.demo")

CONVERSATION_PATH = "/v1/convai/conversation"
SIGNED_URL_PATH = "/v1/convai/conversation/get-signed-url"
BROWSER_SUBPROTOCOL = Subprotocol("convai")  # what the browser client offers
Frame = dict[str, Any]
Script = Callable[["ScriptedConversation"], Awaitable[None]]


class ScriptedConversation:
    """One conversation the SDK opened, driven from the agent's side."""

    def __init__(self, ws: ServerConnection, init: Frame, number: int = 1) -> None:
        self.ws = ws
        self.init = init
        self.number = number  # the stand-in's first conversation is 1
        self.conversation_id = f"conv_demo_{uuid.uuid4().hex[:10]}"
        self.received: asyncio.Queue[Frame] = asyncio.Queue()
        self._event_ids = itertools.count(1)

    @property
    def dynamic_variables(self) -> dict[str, Any]:
        return dict(self.init.get("dynamic_variables") or {})

    async def _send(self, frame: Frame) -> None:
        await self.ws.send(json.dumps(frame))

    async def user_said(self, text: str) -> None:
        await self._send(events.user_transcript(text, next(self._event_ids)))

    async def say(self, text: str) -> None:
        await self._send(events.agent_response(text, next(self._event_ids)))

    async def interrupted(self, original: str, corrected: str) -> None:
        """The user cut the agent off: the platform's interruption, then the correction
        of what the agent had really said by then."""
        event_id = next(self._event_ids)
        await self._send(events.interruption(event_id))
        await self._send(events.agent_response_correction(original, corrected, event_id))

    async def call_tool(
        self, name: str, parameters: dict[str, Any], timeout: float = 30.0
    ) -> tuple[Any, bool]:
        """A ``client_tool_call``; answers the SDK's result (decoded) and ``is_error``."""
        call_id = f"toolu_demo_{uuid.uuid4().hex[:12]}"
        await self._send(events.client_tool_call(name, call_id, parameters, next(self._event_ids)))
        message = await self.next_message(
            lambda m: m.get("type") == "client_tool_result" and m.get("tool_call_id") == call_id,
            timeout,
        )
        result = message.get("result")
        with contextlib.suppress(TypeError, ValueError):
            result = json.loads(result) if isinstance(result, str) else result
        return result, bool(message.get("is_error"))

    async def next_message(self, predicate: Callable[[Frame], bool], timeout: float) -> Frame:
        """The next message from the SDK that matches (others are passed over)."""
        async with asyncio.timeout(timeout):
            while True:
                message = await self.received.get()
                if predicate(message):
                    return message

    async def pause(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


class StandIn:
    """``async with StandIn(script) as platform:`` serves on ``platform.base_url``."""

    def __init__(self, script: Script, *, agent_id: str = "demo-agent") -> None:
        self.script = script
        self.agent_id = agent_id
        self.port = 0
        self.finished = asyncio.Event()
        self._server: Server | None = None
        self._opened = itertools.count(1)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> StandIn:
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            max_size=16 * 1024 * 1024,
            process_request=self._signed_url,
            select_subprotocol=lambda _, offered: (
                BROWSER_SUBPROTOCOL if BROWSER_SUBPROTOCOL in offered else None
            ),
        )
        self.port = next(iter(self._server.sockets)).getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 5)

    async def _handle(self, ws: ServerConnection) -> None:
        assert ws.request is not None
        url = urlsplit(ws.request.path)
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        if url.path != CONVERSATION_PATH or query.get("agent_id") != self.agent_id:
            await ws.close(1008, "unknown agent")
            return
        try:
            init = json.loads(await asyncio.wait_for(ws.recv(), 10))
        except (TimeoutError, ConnectionClosed, ValueError):
            return
        conversation = ScriptedConversation(ws, init, next(self._opened))
        await ws.send(
            json.dumps(
                {
                    "type": "conversation_initiation_metadata",
                    "conversation_initiation_metadata_event": {
                        "conversation_id": conversation.conversation_id,
                        "agent_output_audio_format": "pcm_16000",
                        "user_input_audio_format": "pcm_16000",
                    },
                }
            )
        )
        reader = asyncio.create_task(self._read(ws, conversation))
        try:
            await self.script(conversation)
        except (ConnectionClosed, TimeoutError) as exc:
            log.warning("the demo conversation stopped: %s", exc)
        finally:
            self.finished.set()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
            await ws.close(1000, "the demo conversation is over")

    def _signed_url(self, connection: ServerConnection, request: Request) -> Response | None:
        """The signed-URL API the hub asks for the page's conversation (any key: this
        is the demo's own stand-in, on the loopback)."""
        if urlsplit(request.path).path != SIGNED_URL_PATH:
            return None
        url = f"ws://127.0.0.1:{self.port}{CONVERSATION_PATH}?agent_id={self.agent_id}"
        body = json.dumps({"signed_url": f"{url}&conversation_signature=demo"}).encode()
        headers = Headers({"Content-Type": "application/json", "Content-Length": str(len(body))})
        return Response(200, "OK", headers, body)

    @staticmethod
    async def _read(ws: ServerConnection, conversation: ScriptedConversation) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                with contextlib.suppress(ValueError):
                    message = json.loads(raw)
                    if isinstance(message, dict) and "user_audio_chunk" not in message:
                        await conversation.received.put(message)
