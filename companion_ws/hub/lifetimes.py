"""A connection or a stream lives no longer than its credential (docs/protocol.md section 12).

One task for the whole process, not one timer per holder: a heap of deadlines, taken
from :meth:`Credentials.deadline <companion_ws.hub.credentials.Credentials.deadline>`.
A socket is sent ``refresh_required`` at ``exp - lead``; at the deadline (``exp +
grace``), unless a ``refresh`` moved its expiry, it gets ``token_expired`` and is
closed 4401. A stream (AG-UI, gRPC) cannot refresh: at the deadline it is told
``token_expired`` and ends. A credential that never expires (``expires_at`` 0) is
never watched.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import time
from typing import Protocol

from companion_ws.auth.tokens import Principal
from companion_ws.hub.connection import Connection
from companion_ws.hub.credentials import Credentials
from companion_ws.protocol import frames as f
from companion_ws.protocol.codec import encode
from companion_ws.protocol.errors import TokenExpired
from companion_ws.protocol.replies import error_frame

__all__ = ["Holder", "Lifetimes"]

_WARN, _CUT = 0, 1


class Holder(Protocol):
    """What lives no longer than its credential: a socket, a stream."""

    @property
    def principal(self) -> Principal: ...

    @property
    def gone(self) -> bool:
        """Closed already: nothing to do."""
        ...

    def warn(self, expires_at: float) -> None:
        """The credential expires at ``expires_at``: ask for a fresh one, if it can."""
        ...

    def expire(self, error: TokenExpired) -> None:
        """The deadline passed without a fresh credential: end with ``error``."""
        ...


class _Socket:
    """A socket as a holder: ``refresh_required``, then ``token_expired`` and 4401."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    @property
    def principal(self) -> Principal:
        return self._conn.principal

    @property
    def gone(self) -> bool:
        return self._conn.outbox.closed

    def warn(self, expires_at: float) -> None:
        conn = self._conn
        frame = f.RefreshRequired(session_id=conn.session_id, expires_at=int(expires_at * 1000))
        conn.send(encode(frame).decode())

    def expire(self, error: TokenExpired) -> None:
        conn = self._conn
        conn.send(error_frame(conn.session_id, error, None))
        conn.outbox.close(error.close_code or 4401, error.message)


class Lifetimes:
    def __init__(self, credentials: Credentials, *, lead: float) -> None:
        self._credentials = credentials
        self._lead = lead
        # (when, tie-breaker, what, holder, the expiry it was scheduled for)
        self._heap: list[tuple[float, int, int, Holder, float]] = []
        self._order = itertools.count()
        self._lapsed = 0  # entries of holders gone since the last compaction, at most
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def watch(self, conn: Connection) -> None:
        """Schedule a socket's warning and cut for its credential's current expiry
        (again after a ``refresh``: the older entries then lapse)."""
        self._schedule(_Socket(conn), warn=True)

    def watch_stream(self, stream: Holder) -> None:
        """Schedule a stream's end at its credential's deadline (no warning: a stream
        cannot refresh)."""
        self._schedule(stream, warn=False)

    def _schedule(self, holder: Holder, *, warn: bool) -> None:
        principal = holder.principal
        deadline = self._credentials.deadline(principal)
        if deadline <= 0:
            return
        expires = principal.expires_at
        if warn:
            self._push(expires - self._lead, _WARN, holder, expires)
        self._push(deadline, _CUT, holder, expires)

    def lapsed(self) -> None:
        """A holder is gone before its deadline (a stream closed). Its entries stay in
        the heap until their time, unless gone entries are half of it: then the heap is
        rebuilt without them, so streams opened and closed in a loop cannot grow it
        for as long as their tokens live."""
        self._lapsed += 1
        if self._lapsed > 64 and 2 * self._lapsed > len(self._heap):
            self._heap = [entry for entry in self._heap if not entry[3].gone]
            heapq.heapify(self._heap)
            self._lapsed = 0

    def __len__(self) -> int:
        """Entries scheduled (gone holders' included, until their time or a compaction)."""
        return len(self._heap)

    def _push(self, when: float, what: int, holder: Holder, expires: float) -> None:
        first = self._heap[0][0] if self._heap else None
        heapq.heappush(self._heap, (when, next(self._order), what, holder, expires))
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
            _, _, what, holder, expires = heapq.heappop(self._heap)
            if holder.gone or holder.principal.expires_at != expires:
                continue  # gone, or refreshed since: a newer entry stands
            if what == _WARN:
                holder.warn(expires)
            else:
                holder.expire(TokenExpired("the token expired and was not refreshed"))
