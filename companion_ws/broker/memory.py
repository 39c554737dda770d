"""The in-process broker: a counter and a ring of recent events per session.

Durable before visible: with a journal (the database's event log), ``publish`` takes
the next seq at once (no await between taking it and queueing the event, so seq order
is commit order) and the event becomes visible, in the ring and to the handler, only
after the journal committed it; events published meanwhile ride the same commit. If
the commit fails, the numbers nobody saw are taken back and the publish fails.

Bounded: a session's ring holds at most ``history_size`` events and ``history_bytes``
bytes. A session with no subscriber and nothing in flight is forgotten (its history
stays in the database, and the next use seeds the stream from there).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from companion_ws.broker.base import EventHandler, LeaveHandler, SeedLoader
from companion_ws.protocol.codec import with_seq
from companion_ws.values import Event, HistorySlice, Position, Seed

__all__ = ["Journal", "MemoryBroker", "MemoryPresence"]

#: A stream with no subscriber, unused this long, leaves memory (journaled only)...
IDLE_AFTER = 60.0
#: ...checked at most this often, from publish.
PRUNE_EVERY = 10.0


class Journal(Protocol):
    def write(
        self,
        event: Event,
        *,
        visible: Callable[[Event], None],
        rollback: Callable[[Event], None],
    ) -> Awaitable[None]:
        """Commit ``event``; then call ``visible(event)`` (in seq order) and resolve."""


class _Stream:
    __slots__ = (
        "bytes",
        "committed",
        "epoch",
        "floor",
        "in_flight",
        "ring",
        "seq",
        "subscribers",
        "times",
        "used",
    )

    def __init__(self, seed: Seed) -> None:
        self.seq = seed.seq  # the last number taken
        self.committed = seed.seq  # the last number visible (ring[-1], when it has one)
        self.epoch = seed.epoch
        self.floor = ""  # the voice floor (docs/protocol.md section 17), opaque here
        self.ring: deque[Event] = deque(seed.recent)
        now = time.monotonic()
        self.times: deque[float] = deque(now for _ in self.ring)
        self.bytes = sum(len(e.payload) for e in self.ring)
        self.in_flight = 0  # published, not yet committed
        self.subscribers = 0
        self.used = now


class MemoryPresence:
    """One process's presence: nobody else can leave behind a stale entry."""

    def __init__(self) -> None:
        self._members: dict[str, dict[str, dict[str, Any]]] = {}

    async def add(self, session_id: str, connection_id: str, info: dict[str, Any]) -> None:
        """Announce a local connection."""
        self._members.setdefault(session_id, {})[connection_id] = info

    async def remove(self, session_id: str, connection_id: str) -> None:
        """Withdraw a local connection."""
        members = self._members.get(session_id)
        if members is not None:
            members.pop(connection_id, None)
            if not members:
                del self._members[session_id]

    async def members(self, session_id: str) -> list[dict[str, Any]]:
        """The session's live connections."""
        return list(self._members.get(session_id, {}).values())


class MemoryBroker:
    journaled: bool

    def __init__(
        self,
        *,
        history_size: int = 1000,
        history_ttl: float = 86400.0,
        history_bytes: int = 8 * 1024 * 1024,
        journal: Journal | None = None,
    ) -> None:
        self._size = history_size
        self._ttl = history_ttl
        self._max_bytes = history_bytes
        self._journal = journal
        self.journaled = journal is not None
        self._streams: dict[str, _Stream] = {}
        self._pruned = time.monotonic()
        self._loading: dict[str, asyncio.Future[_Stream]] = {}
        self.presence = MemoryPresence()
        self._handler: EventHandler | None = None
        self._seed: SeedLoader | None = None

    async def start(self, handler: EventHandler, seed: SeedLoader, on_leave: LeaveHandler) -> None:
        """Deliver to ``handler``; seed streams with ``seed`` (nobody else can leave)."""
        self._handler = handler
        self._seed = seed

    async def close(self) -> None:
        """Forget every stream."""
        self._streams.clear()

    async def ping(self) -> bool:
        """Always usable."""
        return True

    async def _stream(self, session_id: str) -> _Stream:
        stream = self._streams.get(session_id)
        if stream is not None:
            return stream
        pending = self._loading.get(session_id)
        if pending is not None:
            return await asyncio.shield(pending)
        assert self._seed is not None, "broker not started"
        future: asyncio.Future[_Stream] = asyncio.get_running_loop().create_future()
        self._loading[session_id] = future
        try:
            stream = _Stream(await self._seed(session_id))
            self._trim(stream)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved
            raise
        finally:
            del self._loading[session_id]
        self._streams[session_id] = stream
        future.set_result(stream)
        return stream

    async def publish(self, session_id: str, kind: str, body: bytes) -> Event:
        """The next seq, committed to the journal (if any), then visible to all."""
        return await self._publish(await self._stream(session_id), session_id, kind, body)

    async def swap_floor(
        self, session_id: str, expect: str | None, floor: str, kind: str, body: bytes
    ) -> Event | None:
        """Compare, set and take the next seq with no await in between: the floor
        changes in seq order. A publish that fails puts the floor back."""
        stream = await self._stream(session_id)
        old = stream.floor
        if expect is not None and old != expect:
            return None
        stream.floor = floor
        try:
            return await self._publish(stream, session_id, kind, body)
        except BaseException:
            if stream.floor == floor:
                stream.floor = old
            raise

    async def floor(self, session_id: str) -> str:
        """The session's voice floor."""
        return (await self._stream(session_id)).floor

    async def _publish(self, stream: _Stream, session_id: str, kind: str, body: bytes) -> Event:
        stream.seq += 1
        stream.used = now = time.monotonic()
        self._prune(now)
        event = Event(session_id, stream.seq, stream.epoch, kind, with_seq(body, stream.seq))
        if self._journal is None:
            self._visible(event, stream)
            return event
        try:
            committed = self._journal.write(
                event,
                visible=lambda ev: self._visible(ev, stream),
                rollback=lambda ev: self._rollback(ev, stream),
            )
        except BaseException:
            self._rollback(event, stream)  # refused at once (backlog full): nobody saw it
            raise
        stream.in_flight += 1
        try:
            await committed
        finally:
            stream.in_flight -= 1
        return event

    def _visible(self, event: Event, stream: _Stream) -> None:
        stream.committed = event.seq
        stream.ring.append(event)
        stream.times.append(time.monotonic())
        stream.bytes += len(event.payload)
        self._trim(stream)
        assert self._handler is not None
        self._handler(event)

    def _rollback(self, event: Event, stream: _Stream) -> None:
        # Nobody saw this number (nor any after it): the next publish takes it again.
        stream.seq = min(stream.seq, event.seq - 1)

    def _trim(self, stream: _Stream) -> None:
        ring, times = stream.ring, stream.times
        while ring and (len(ring) > self._size or stream.bytes > self._max_bytes):
            stream.bytes -= len(ring.popleft().payload)
            times.popleft()

    def _idle(self, stream: _Stream) -> bool:
        return self.journaled and stream.subscribers == 0 and stream.in_flight == 0

    def _forget_if_idle(self, session_id: str, stream: _Stream) -> None:
        if self._idle(stream) and self._streams.get(session_id) is stream:
            del self._streams[session_id]

    def _prune(self, now: float) -> None:
        """Now and then: forget the streams nobody subscribed to nor used for a while
        (sessions that only backends publish into)."""
        if now - self._pruned < PRUNE_EVERY:
            return
        self._pruned = now
        idle = [
            sid
            for sid, stream in self._streams.items()
            if self._idle(stream) and now - stream.used > IDLE_AFTER
        ]
        for sid in idle:
            del self._streams[sid]

    async def subscribe(self, session_id: str) -> None:
        """Keep the session's stream in memory while this process has clients of it."""
        (await self._stream(session_id)).subscribers += 1

    async def unsubscribe(self, session_id: str) -> None:
        """The last local client left: the stream may leave memory (journaled only)."""
        stream = self._streams.get(session_id)
        if stream is not None:
            stream.subscribers = max(0, stream.subscribers - 1)
            self._forget_if_idle(session_id, stream)

    async def position(self, session_id: str) -> Position:
        """The last seq taken and the epoch."""
        stream = await self._stream(session_id)
        return Position(stream.seq, stream.epoch)

    async def history(self, session_id: str, after_seq: int, limit: int) -> HistorySlice:
        """Committed events after ``after_seq`` from the ring, when it still holds all of
        them (events still being committed arrive live)."""
        stream = await self._stream(session_id)
        position = Position(stream.seq, stream.epoch)
        if after_seq > stream.seq:
            return HistorySlice((), position, False)
        newest = stream.committed
        if after_seq >= newest:
            return HistorySlice((), position, True)
        horizon = time.monotonic() - self._ttl
        first = newest + 1
        for event, at in zip(stream.ring, stream.times, strict=True):
            if at >= horizon:
                first = event.seq
                break
        if after_seq + 1 < first:
            return HistorySlice((), position, False)
        skip = len(stream.ring) - (newest - after_seq)
        events = [stream.ring[i] for i in range(skip, min(len(stream.ring), skip + limit))]
        return HistorySlice(events, position, True)
