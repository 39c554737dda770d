"""What every test socket offers (the subprocess hub's ``WS`` and the in-process hub's
``InProcessWS``), and the helpers the tests of both build on: a test reads the same
against either hub."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from tests.support.hub import token

__all__ = [
    "UNSEQ",
    "Frame",
    "FrameSocket",
    "bearer",
    "eventually",
    "frames_until",
    "get_state",
    "history_over_http",
    "is_",
    "new_user",
    "say",
    "seqs",
    "tool_answer",
    "tool_call",
]

Frame = dict[str, Any]

#: Frames without a seq of their own in a session's order.
UNSEQ = {"session_joined", "session_state", "resync_required", "resumed", "history"}


class FrameSocket:
    """JSON frames in and out over ``send`` and ``recv``, which each socket provides."""

    async def send(self, frame: Frame | str) -> None:
        raise NotImplementedError

    async def recv(self, timeout: float = 5.0) -> Frame:
        raise NotImplementedError

    async def recv_until(self, predicate: Callable[[Frame], bool], timeout: float = 5.0) -> Frame:
        """Skip frames until one matches (presence noise, say)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            frame = await self.recv(max(0.01, deadline - loop.time()))
            if predicate(frame):
                return frame

    async def recv_type(self, kind: str, timeout: float = 5.0) -> Frame:
        return await self.recv_until(lambda f: f.get("type") == kind, timeout)

    async def request(self, frame: Frame, timeout: float = 5.0) -> Frame:
        """Send with a fresh requestId; the first frame carrying it back (reply or error)."""
        rid = f"r{id(frame)}-{asyncio.get_running_loop().time()}"
        await self.send({**frame, "requestId": rid})
        return await self.recv_until(lambda f: f.get("requestId") == rid, timeout)


def new_user() -> str:
    """A fresh user per test, where a module shares one hub."""
    return f"u-{uuid.uuid4().hex[:8]}"


def bearer(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user)}"}


async def frames_until(
    ws: FrameSocket, predicate: Callable[[Frame], bool], timeout: float = 10.0
) -> list[Frame]:
    """Every frame up to and including the first that matches."""
    out: list[Frame] = []
    async with asyncio.timeout(timeout):
        while True:
            frame = await ws.recv(timeout)
            out.append(frame)
            if predicate(frame):
                return out


async def eventually(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait until ``predicate()`` holds (a bound on waiting, never on speed)."""
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def is_(kind: str, **fields: Any) -> Callable[[Frame], bool]:
    return lambda f: f.get("type") == kind and all(f.get(k) == v for k, v in fields.items())


def seqs(frames: list[Frame]) -> list[int]:
    return [f["seq"] for f in frames if "seq" in f and f["type"] not in UNSEQ]


async def say(ws: FrameSocket, text: str, **data: Any) -> Frame:
    """Publish a contextual_update; its broadcast echo."""
    return await ws.request({"type": "contextual_update", "text": text, "data": data or None})


async def get_state(ws: FrameSocket) -> Frame:
    reply = await ws.request({"type": "get_session_state"})
    assert reply["type"] == "session_state", reply
    return reply


def tool_call(
    tool_name: str, parameters: dict[str, Any], tool_call_id: str | None = None, **extra: Any
) -> Frame:
    return {
        "type": "client_tool_call",
        "client_tool_call": {
            "tool_name": tool_name,
            "tool_call_id": tool_call_id or f"toolu_{uuid.uuid4().hex[:12]}",
            "parameters": parameters,
        },
        **extra,
    }


async def tool_answer(ws: FrameSocket, frame: Frame, timeout: float = 10.0) -> Frame:
    """The tool call's answer: its ``client_tool_result`` or ``error`` (its broadcasts
    carry the same ``requestId``)."""
    rid = uuid.uuid4().hex
    await ws.send({**frame, "requestId": rid})
    return await ws.recv_until(
        lambda f: f.get("requestId") == rid and f["type"] in ("client_tool_result", "error"),
        timeout,
    )


async def history_over_http(http: Any, sid: str, bearer_token: str, limit: int) -> list[Frame]:
    """Every event of the session, page by page over ``GET /history``."""
    events: list[Frame] = []
    after = 0
    while True:
        reply = await http.get(
            f"/sessions/{sid}/history",
            params={"after_seq": after, "limit": limit},
            headers={"Authorization": f"Bearer {bearer_token}"},
        )
        assert reply.status_code == 200, reply.text
        page = reply.json()
        assert page["session_id"] == sid and len(page["events"]) <= limit
        events += page["events"]
        if not page["has_more"]:
            return events
        after = page["next_after_seq"]
