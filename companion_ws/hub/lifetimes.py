"""A connection lives no longer than its credential (PROTOCOL.md section 12).

One task for the whole process, not one timer per socket: a heap of deadlines. At
``exp - lead`` a connection is sent ``refresh_required``; at ``exp + grace``, unless a
``refresh`` moved its expiry, it gets ``token_expired`` and is closed 4401. A
connection whose credential never expires (``expires_at`` 0) is never watched.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time

from companion_ws.errors import TokenExpired
from companion_ws.hub.commands import error_frame
from companion_ws.hub.connection import Connection
from companion_ws.protocol import frames as f
from companion_ws.protocol.codec import encode

__all__ = ["Lifetimes"]

_WARN, _CUT = 0, 1


class Lifetimes:
    def __init__(self, *, lead: float, grace: float) -> None:
        self._lead = lead
        self._grace = grace
        # (when, tie-breaker, what, connection, the expiry it was scheduled for)
        self._heap: list[tuple[float, int, int, Connection, float]] = []
        self._order = itertools.count()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def watch(self, conn: Connection) -> None:
        """Schedule the warning and the cut for the connection's current expiry."""
        expires = conn.principal.expires_at
        if expires <= 0:
            return
        self._push(expires - self._lead, _WARN, conn, expires)
        self._push(expires + self._grace, _CUT, conn, expires)

    def _push(self, when: float, what: int, conn: Connection, expires: float) -> None:
        first = self._heap[0][0] if self._heap else None
        heapq.heappush(self._heap, (when, next(self._order), what, conn, expires))
        if first is None or when < first:
            self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="token-lifetimes")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        while True:
            delay = self._heap[0][0] - time.time() if self._heap else 3600.0
            if delay > 0:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                continue
            _, _, what, conn, expires = heapq.heappop(self._heap)
            if conn.outbox.closed or conn.principal.expires_at != expires:
                continue  # gone, or refreshed since: a newer entry stands
            if what == _WARN:
                frame = f.RefreshRequired(
                    session_id=conn.session_id, expires_at=int(expires * 1000)
                )
                conn.send(encode(frame).decode())
            else:
                expired = TokenExpired("the token expired and was not refreshed")
                conn.send(error_frame(conn.session_id, expired, None))
                conn.outbox.close(expired.close_code or 4401, expired.message)
