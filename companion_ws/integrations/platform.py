"""The seam between a voice platform and a hub session: what any platform adapter
(ElevenLabs, Pipecat, LiveKit Agents) needs, in one place.

    voice platform  <-- adapter -->  SessionLink  <-- CompanionClient -->  hub

A :class:`SessionLink` is one hub session seen by one agent, over the link's own
connection (``client="agent"``):

- **the conversation -> screens.** :attr:`SessionLink.frames` maps what the platform
  reports (the user's and the agent's words, the agent's state) to docs/protocol.md
  section 13 frames; :meth:`SessionLink.publish` sends them to the hub one by one, in
  order, without holding up the agent; :meth:`SessionLink.step` adds a ``step``.
- **agent -> screens.** :meth:`SessionLink.call_tool` runs one of the hub's tools
  through the hub (``client_tool_call``): once per ``tool_call_id`` (a retried call
  answers the first run's result), its update broadcast to every screen. What was said
  before the call reaches the screens before the tool runs.
- **screens -> agent.** What the agent should be told (the session's summary on start,
  on resume after missed events; a change or ``contextual_update`` made by a screen or a
  backend) comes out of :meth:`SessionLink.told`, in plain words, in order, from the
  :class:`~companion_ws.integrations.narrator.Narrator`.
- **the end.** :meth:`SessionLink.watch` returns when the session has ended
  (:attr:`SessionLink.session_ended`) or the hub closed the connection for good;
  :meth:`SessionLink.close` publishes ``agent_state`` ``idle`` and flushes first.

An adapter maps its platform's events onto ``frames`` + ``publish``, registers the
hub's tools (``link.tools``) with the platform calling ``call_tool``, and feeds what
``told()`` yields into the platform's context. Nothing here knows any platform.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from companion_ws.client import ClientError, CompanionClient
from companion_ws.integrations.narrator import Narrator
from companion_ws.integrations.voice_frames import ConversationFrames

__all__ = [
    "FLUSH_TIMEOUT",
    "LinkError",
    "LinkedAgent",
    "SessionLink",
    "Token",
    "ToolAnswer",
    "error_json",
]

log = logging.getLogger("companion_ws.platform")

#: Seconds the link waits for its queued frames to reach the hub (before a tool call,
#: on leaving).
FLUSH_TIMEOUT = 3.0
Token = str | Callable[[], str | Awaitable[str]]


class LinkError(Exception):
    """The link cannot run: the session is not live, or the token may not act as agent."""


@dataclass(frozen=True)
class ToolAnswer:
    """The hub's answer to a tool call: its ``result`` as a JSON string (what the agent
    reads), and whether it is an error."""

    text: str
    is_error: bool


def error_json(message: str, code: str | None = None) -> str:
    body: dict[str, Any] = {"error": message}
    if code:
        body["code"] = code
    return json.dumps(body)


class SessionLink:
    """One agent's link to one hub session (see the module's docstring)."""

    def __init__(
        self,
        hub_url: str,
        token: Token,
        session_id: str,
        *,
        transcripts: bool = True,
        frames: ConversationFrames | None = None,
    ) -> None:
        self.session_id = session_id
        self.client = CompanionClient(hub_url, token=token, session_id=session_id, client="agent")
        self.frames = frames or ConversationFrames(transcripts=transcripts)
        self.narrator = Narrator(self.client, session_id)
        self.session_ended = False
        self._events: AsyncIterator[dict[str, Any]] | None = None
        self._to_agent: asyncio.Queue[str] = asyncio.Queue()
        self._to_hub: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._tasks: set[asyncio.Task[Any]] = set()

    @property
    def state(self) -> dict[str, Any]:
        """The session state: the hub client's mirror (there is no other copy)."""
        return self.client.state

    # ------------------------------------------------------------ lifecycle

    async def open(self) -> None:
        """Join the session; queue what the agent should hear first (its summary, when
        the session has state). Raises :class:`LinkError` or the client's error."""
        self._events = self.client.events()  # made before the connect: no frame falls between
        await self.client.start()
        if self.client.session_id != self.session_id:
            raise LinkError(
                f"session {self.session_id!r} is not live on the hub (it has ended, "
                "expired or never existed)"
            )
        for text in self.narrator.started():
            self._to_agent.put_nowait(text)
        self.spawn(self._publisher())

    async def watch(self) -> None:
        """Read the session's frames for the agent until the session ends or the hub
        closes the connection for good (then ``session_ended`` is False)."""
        assert self._events is not None, "open() first"
        async for frame in self._events:
            for text in self.narrator.read(frame):
                self._to_agent.put_nowait(text)
            if self.narrator.ended:
                self.session_ended = True
                return

    async def close(self, *, left: bool = True) -> None:
        """Say the agent left (``idle``; not when ``left`` is False: it never came),
        flush what is queued, and disconnect."""
        if left:
            self.publish(self.frames.ended())
        await self.flush()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        await self.client.close()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """A task the link cancels on :meth:`close`."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------ agent -> agent's context

    async def told(self) -> str:
        """The next thing to tell the agent (waits)."""
        return await self._to_agent.get()

    def nothing_to_tell(self) -> bool:
        return self._to_agent.empty()

    def capability(self) -> str | None:
        """The hub's signed capability for this session (docs/protocol.md section 11),
        for a platform whose server tools call the hub over HTTP."""
        value = self.client.welcome.get("agent_capability")
        return value if isinstance(value, str) else None

    # ------------------------------------------------------------ conversation -> screens

    def publish(self, frames: list[dict[str, Any]]) -> None:
        """Queue section 13 frames for the screens, in order, without waiting."""
        for frame in frames:
            self._to_hub.put_nowait(frame)

    def step(self, step_id: str, name: str, status: str, detail: str | None = None) -> None:
        """A ``step`` (docs/protocol.md section 13): ``started``, ``done`` or ``failed``."""
        frame: dict[str, Any] = {"type": "step", "step_id": step_id, "name": name}
        frame["status"] = status
        if detail is not None:
            frame["detail"] = detail
        self.publish([frame])

    async def flush(self, timeout: float = FLUSH_TIMEOUT) -> None:
        """Wait (at most ``timeout``) until every queued frame has been sent."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._to_hub.join(), timeout)

    async def _publisher(self) -> None:
        while True:
            frame = await self._to_hub.get()
            try:
                if self.client.connected:
                    await self.client.request(frame)
            except Exception as exc:
                log.warning("link: publishing %s failed: %s", frame.get("type"), exc)
            finally:
                self._to_hub.task_done()

    # ------------------------------------------------------------ tools

    async def call_tool(
        self, tool_name: str, tool_call_id: str | None, parameters: dict[str, Any]
    ) -> ToolAnswer:
        """Run a hub tool once per ``tool_call_id`` (a new id when the platform gives
        none); the agent is ``thinking`` meanwhile. Never raises: a failure is an
        error answer the agent can read."""
        call_id = tool_call_id or f"agent_{uuid.uuid4().hex}"
        self.publish(self.frames.tool_call())
        await self.flush()
        try:
            reply = await self.client.call_tool(tool_name, call_id, parameters)
        except ClientError as exc:
            return ToolAnswer(error_json(exc.message, exc.code), True)
        except Exception as exc:
            return ToolAnswer(error_json(f"the hub did not answer: {exc}"), True)
        result = reply.get("result")
        text = result if isinstance(result, str) else json.dumps(result)
        return ToolAnswer(text, bool(reply.get("is_error")))


class LinkedAgent:
    """What an adapter holding one :class:`SessionLink` shares: leaving it once, and
    whether its session has ended."""

    def __init__(self, link: SessionLink) -> None:
        self.link = link
        self._left = False

    async def aclose(self) -> None:
        """Say the agent left (``idle``), flush, and leave the hub session (once)."""
        if not self._left:
            self._left = True
            await self.link.close()

    @property
    def session_ended(self) -> bool:
        return self.link.session_ended
