"""Listeners: in-process consumers of session events that are not sockets (a gRPC
``Subscribe``, the bus's outbound projection). The node's broker handler feeds them
after the local connections, in the order the broker delivers (seq order per session).

Two kinds: a *tap* sees every event this process receives (the outbound projection); a
*watch* sees one session's events, and keeps the broker subscribed to that session
while it is open (a process only receives the sessions it subscribed to). With no
listener registered, :meth:`Listeners.feed` is one attribute test: the broadcast hot
path stays as cheap as before.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from companion_ws.broker.base import Broker
from companion_ws.values import Event

__all__ = ["Listeners", "Tap", "Watch"]

log = logging.getLogger("companion_ws.listeners")

Tap = Callable[[Event], None]

#: A watch that falls this far behind is cut off (its reader resumes from its cursor).
WATCH_LIMIT = 4096


class Watch:
    """One session's live events, queued (bounded by count, and by payload bytes when
    ``max_bytes`` is given) until read."""

    def __init__(
        self, session_id: str, limit: int = WATCH_LIMIT, max_bytes: int | None = None
    ) -> None:
        self.session_id = session_id
        self._queue: asyncio.Queue[Event | None] = asyncio.Queue()
        self._limit = limit
        self._max_bytes = max_bytes
        self._bytes = 0
        self.overflowed = False

    def put(self, event: Event) -> None:
        if self.overflowed:
            return
        size = len(event.payload)
        if self._queue.qsize() >= self._limit or (
            self._max_bytes is not None and self._bytes + size > self._max_bytes
        ):
            self.overflowed = True
            self._queue.put_nowait(None)
            return
        self._bytes += size
        self._queue.put_nowait(event)

    async def get(self) -> Event | None:
        """The next live event; None when this watch overflowed (resume from history)."""
        event = await self._queue.get()
        if event is not None:
            self._bytes -= len(event.payload)
        return event

    def pending(self) -> list[Event]:
        """The events queued now, without waiting."""
        out: list[Event] = []
        while not self._queue.empty():
            event = self._queue.get_nowait()
            if event is not None:
                self._bytes -= len(event.payload)
                out.append(event)
        return out


class Listeners:
    def __init__(self, broker: Broker) -> None:
        self._broker = broker
        self._taps: list[Tap] = []
        self._watches: dict[str, set[Watch]] = {}
        self.active = False  # any listener at all: the hot path's only test

    def _update(self) -> None:
        self.active = bool(self._taps or self._watches)

    def add_tap(self, tap: Tap) -> None:
        """Feed ``tap`` every event this process receives."""
        self._taps.append(tap)
        self._update()

    def remove_tap(self, tap: Tap) -> None:
        if tap in self._taps:
            self._taps.remove(tap)
        self._update()

    @asynccontextmanager
    async def watch(
        self, session_id: str, *, limit: int = WATCH_LIMIT, max_bytes: int | None = None
    ) -> AsyncIterator[Watch]:
        """One session's live events, from now until the block ends."""
        watch = Watch(session_id, limit, max_bytes)
        self._watches.setdefault(session_id, set()).add(watch)
        self._update()
        try:
            await self._broker.subscribe(session_id)
        except BaseException:
            self._drop(watch)
            raise
        try:
            yield watch
        finally:
            self._drop(watch)
            try:
                await self._broker.unsubscribe(session_id)
            except Exception as exc:
                log.warning("unsubscribing %s failed: %s", session_id, exc)

    def _drop(self, watch: Watch) -> None:
        members = self._watches.get(watch.session_id)
        if members is not None:
            members.discard(watch)
            if not members:
                del self._watches[watch.session_id]
        self._update()

    def feed(self, event: Event) -> None:
        """Called by the node's broker handler for each event, in delivery order."""
        for tap in self._taps:
            try:
                tap(event)
            except Exception:
                log.exception("a listener failed on %s/%d", event.session_id, event.seq)
        members = self._watches.get(event.session_id)
        if members:
            for watch in members:
                watch.put(event)
