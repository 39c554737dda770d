"""A local stand-in for the ElevenLabs Conversational AI platform, for the demo: the
real ``elevenlabs`` SDK connects to it by ``base_url`` (ELEVENLABS.md, appendix) and it
plays the agent's side from a script instead of a language model. It says so: every
conversation opens with the agent saying it is a scripted demo.

It accepts ``/v1/convai/conversation?agent_id=...``, reads the SDK's
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
from websockets.exceptions import ConnectionClosed

from companion_ws.demo import events

__all__ = ["CONVERSATION_PATH", "ScriptedConversation", "StandIn"]

log = logging.getLogger("companion_ws.demo")

CONVERSATION_PATH = "/v1/convai/conversation"
Frame = dict[str, Any]
Script = Callable[["ScriptedConversation"], Awaitable[None]]


class ScriptedConversation:
    """One conversation the SDK opened, driven from the agent's side."""

    def __init__(self, ws: ServerConnection, init: Frame) -> None:
        self.ws = ws
        self.init = init
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

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> StandIn:
        self._server = await serve(self._handle, "127.0.0.1", 0, max_size=16 * 1024 * 1024)
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
        conversation = ScriptedConversation(ws, init)
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

    @staticmethod
    async def _read(ws: ServerConnection, conversation: ScriptedConversation) -> None:
        with contextlib.suppress(ConnectionClosed):
            async for raw in ws:
                with contextlib.suppress(ValueError):
                    message = json.loads(raw)
                    if isinstance(message, dict) and "user_audio_chunk" not in message:
                        await conversation.received.put(message)
