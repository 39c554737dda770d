"""``EventStream``: one ``events()`` iterator of a client, with a bounded queue; and
``EventStreams``, all of a client's."""

from __future__ import annotations

import asyncio
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

from companion_ws.client.errors import EventStreamOverflow

__all__ = ["EVENT_QUEUE_LIMIT", "EventStream", "EventStreams"]

Frame = dict[str, Any]

#: Frames an ``events()`` iterator may fall behind by before it is cut off.
EVENT_QUEUE_LIMIT = 10_000


class EventStream:
    """One ``events()`` iterator: every frame from the moment it was made, through a
    bounded queue of its own. ``aclose()`` (or leaving ``async with``) detaches it;
    ``detach`` is called once when it ends, whichever way."""

    def __init__(self, limit: int, detach: Callable[[EventStream], None]) -> None:
        self._limit = limit
        self._detach = detach
        self._queue: deque[Frame] = deque()
        self._wake = asyncio.Event()
        self._ended = False
        self._overflowed = False

    def push(self, frame: Frame) -> None:
        """Queue a frame (the client's read loop); past the limit, end with an overflow."""
        if self._ended:
            return
        if len(self._queue) >= self._limit:
            self._overflowed = True
            self.end()
            return
        self._queue.append(frame)
        self._wake.set()

    def end(self) -> None:
        """No more frames: the iterator stops once the queue is read."""
        if not self._ended:
            self._ended = True
            self._detach(self)
        self._wake.set()

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Frame:
        while not self._queue:
            if self._ended:
                if self._overflowed:
                    raise EventStreamOverflow(
                        f"this events() iterator fell {self._limit} frames behind"
                    )
                raise StopAsyncIteration
            self._wake.clear()
            await self._wake.wait()
        return self._queue.popleft()

    async def aclose(self) -> None:
        self._queue.clear()
        self.end()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class EventStreams:
    """A client's open ``events()`` iterators: each frame to all of them; when the
    client stops for good, every one ends (one opened after that ends at once)."""

    def __init__(self, limit: int = EVENT_QUEUE_LIMIT) -> None:
        self._limit = limit
        self._open: weakref.WeakSet[EventStream] = weakref.WeakSet()
        self._ended = False

    def open(self) -> EventStream:
        stream = EventStream(self._limit, self._open.discard)
        if self._ended:
            stream.end()
        else:
            self._open.add(stream)
        return stream

    def push(self, frame: Frame) -> None:
        for stream in list(self._open):
            stream.push(frame)

    def end(self) -> None:
        self._ended = True
        for stream in list(self._open):
            stream.end()

    async def wait_for(self, predicate: Callable[[Frame], bool], timeout: float) -> Frame | None:
        """The next frame (from now on) that matches; None if the client stops first.
        ``TimeoutError`` after ``timeout`` seconds."""
        async with self.open() as stream, asyncio.timeout(timeout):
            async for frame in stream:
                if predicate(frame):
                    return frame
        return None
