"""A connection's bounded send queue.

Frames go in without waiting (``push`` never awaits), a writer task drains them to the
socket, and it exists only while there is something to send, so an idle connection
costs no task. Past ``limit`` queued frames, or ``max_bytes`` of them (frames its
connection holds back during a replay count too, through :meth:`reserve`), the
connection is too slow: the queue is dropped and the connection is closed with 4409
(it resumes on reconnect), so a slow client never slows the others nor grows the
server's memory without bound. Sizes are counted in characters of the JSON text
(its bytes, for ASCII).
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from companion_ws.hub.eager import start_eagerly
from companion_ws.protocol.closecodes import Close
from companion_ws.protocol.wire import text_frame

Send = Callable[[dict[str, Any]], Awaitable[None]]


class Direct(Protocol):
    """Writes a framed message to the socket now, if it can take it without waiting."""

    def write(self, frame: bytes) -> bool: ...


class Outbox:
    __slots__ = (
        "_abort",
        "_bytes",
        "_close",
        "_direct",
        "_grace",
        "_limit",
        "_max_bytes",
        "_queue",
        "_send",
        "_writer",
        "closed",
        "held_bytes",
        "on_overflow",
    )

    def __init__(
        self,
        send: Send,
        *,
        limit: int,
        max_bytes: int,
        grace: float,
        abort: Callable[[], object],
        on_overflow: Callable[[], None] | None = None,
        direct: Direct | None = None,
    ) -> None:
        self._send = send
        self._direct = direct
        self._limit = limit
        self._max_bytes = max_bytes
        self._bytes = 0  # of the queued frames
        self.held_bytes = 0  # of the frames held back by the connection
        self._grace = grace
        self._abort = abort
        # Made on demand and dropped when drained: an idle connection holds no queue.
        self._queue: deque[str] | None = None
        self._writer: asyncio.Task[None] | None = None
        self._close: tuple[int, str] | None = None
        self.closed = False
        self.on_overflow = on_overflow

    @property
    def closing(self) -> tuple[int, str] | None:
        """The close code and reason the hub chose for this socket, once it has."""
        return self._close

    def __len__(self) -> int:
        return len(self._queue) if self._queue is not None else 0

    @property
    def busy(self) -> bool:
        """A writer is sending (or about to send) queued frames."""
        return self._writer is not None

    async def drained(self) -> None:
        """Wait until everything queued so far has been written (or the socket is gone)."""
        while self._writer is not None and not self.closed:
            await asyncio.wait({self._writer})

    def push(self, text: str, framed: bytes | None = None) -> None:
        """Queue ``text`` (``framed``: its frame, when the caller built it already). With
        nothing queued ahead and a socket that takes it now, it is written at once."""
        if self._close is not None or self.closed:
            return
        direct = self._direct
        if (
            direct is not None
            and self._writer is None
            and direct.write(framed if framed is not None else text_frame(text.encode()))
        ):
            return
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        queue.append(text)
        self._bytes += len(text)
        if len(queue) > self._limit or self._bytes + self.held_bytes > self._max_bytes:
            self._overflow()
            return
        if self._writer is None:
            # Usually the socket takes the frame at once and no Task is ever made.
            self._writer = start_eagerly(self._drain())

    def reserve(self, size: int) -> bool:
        """Count a frame of ``size`` held back for later against the budget; False when
        it does not fit (the connection is being closed 4409) or closing already."""
        if self._close is not None or self.closed:
            return False
        self.held_bytes += size
        if self._bytes + self.held_bytes > self._max_bytes:
            self._overflow()
            return False
        return True

    def _overflow(self) -> None:
        self._queue = None
        self._bytes = self.held_bytes = 0
        if self.on_overflow is not None:
            self.on_overflow()
        self.close(Close.TOO_SLOW, "too slow: send queue overflowed")

    def close(self, code: int, reason: str = "") -> None:
        """Send what is queued, then the close frame. A client that does not read
        within the grace period is cut off."""
        if self._close is not None:
            return
        self._close = (code, reason)
        if self._writer is None:
            self._writer = asyncio.create_task(self._drain())
        asyncio.get_running_loop().call_later(self._grace, self._give_up)

    def _give_up(self) -> None:
        if not self.closed:
            self.closed = True
            if self._writer is not None:
                self._writer.cancel()
            self._abort()

    async def _drain(self) -> None:
        try:
            while self._queue:
                text = self._queue.popleft()
                self._bytes -= len(text)
                await self._send({"type": "websocket.send", "text": text})
            if self._close is not None and not self.closed:
                code, reason = self._close
                await self._send({"type": "websocket.close", "code": code, "reason": reason})
                self.closed = True
        except Exception:
            # The socket is gone: the read loop sees the disconnect and cleans up.
            self.closed = True
        finally:
            self._writer = None
            self._queue = None  # drained (the loop runs until it is empty) or closed
            self._bytes = 0
