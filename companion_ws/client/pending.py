"""``PendingRequests``: the requests of one client waiting for their replies, by
``requestId``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

from companion_ws.client.errors import ClientError

__all__ = ["PendingRequests"]

Frame = dict[str, Any]
Want = Callable[[Frame], bool]


class PendingRequests:
    """A future per ``requestId``: the first frame carrying it back resolves it (an
    ``error`` frame as :class:`ClientError`), unless ``want`` says to wait for another."""

    def __init__(self) -> None:
        self._waiting: dict[str, tuple[asyncio.Future[Frame], Want | None]] = {}

    def add(self, want: Want | None = None) -> tuple[str, asyncio.Future[Frame]]:
        rid = uuid.uuid4().hex
        future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = (future, want)
        return rid, future

    def discard(self, rid: str) -> None:
        entry = self._waiting.pop(rid, None)
        if entry is not None:
            future = entry[0]
            if future.done() and not future.cancelled():
                future.exception()  # mark it retrieved whichever way the caller left

    def answer(self, frame: Frame) -> None:
        rid = frame.get("requestId")
        if not isinstance(rid, str):
            return
        entry = self._waiting.get(rid)
        if entry is None:
            return
        future, want = entry
        if future.done():
            return
        if frame.get("type") == "error":
            future.set_exception(ClientError(frame))
        elif want is None or want(frame):
            future.set_result(frame)

    def fail(self, exc: BaseException) -> None:
        for future, _ in list(self._waiting.values()):
            if not future.done():
                future.set_exception(exc)
