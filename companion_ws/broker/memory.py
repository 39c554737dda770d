"""The in-process broker: a counter and a ring of recent events per session, and a
dict of who is connected.

``publish`` is synchronous once the session's stream exists (no await between taking
the next seq and handing the event over), so seq order is delivery order.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any

from companion_ws.broker.base import (
    Event,
    EventHandler,
    HistorySlice,
    LeaveHandler,
    Position,
    Seed,
    SeedLoader,
)
from companion_ws.protocol.codec import with_seq


class _Stream:
    __slots__ = ("epoch", "ring", "seq", "times")

    def __init__(self, seed: Seed, size: int) -> None:
        self.seq = seed.seq
        self.epoch = seed.epoch
        self.ring: deque[Event] = deque(seed.recent, maxlen=size)
        now = time.monotonic()
        self.times: deque[float] = deque((now for _ in self.ring), maxlen=size)


class MemoryPresence:
    """One process: every connection is local, and none outlives the process."""

    def __init__(self) -> None:
        self._sessions: dict[str, dict[str, dict[str, Any]]] = {}

    async def add(self, session_id: str, connection_id: str, info: dict[str, Any]) -> None:
        """Announce a local connection of the session."""
        self._sessions.setdefault(session_id, {})[connection_id] = info

    async def remove(self, session_id: str, connection_id: str) -> None:
        """Withdraw a local connection; removing one that is not there is fine."""
        members = self._sessions.get(session_id)
        if members is not None:
            members.pop(connection_id, None)
            if not members:
                del self._sessions[session_id]

    async def members(self, session_id: str) -> list[dict[str, Any]]:
        """The ``info`` of every connection to the session."""
        return list(self._sessions.get(session_id, {}).values())


class MemoryBroker:
    def __init__(self, *, history_size: int = 1000, history_ttl: float = 86400.0) -> None:
        self._size = history_size
        self._ttl = history_ttl
        self._streams: dict[str, _Stream] = {}
        self._loading: dict[str, asyncio.Future[_Stream]] = {}
        self.presence = MemoryPresence()
        self._handler: EventHandler | None = None
        self._seed: SeedLoader | None = None

    async def start(self, handler: EventHandler, seed: SeedLoader, on_leave: LeaveHandler) -> None:
        """Begin delivering events to ``handler``. ``on_leave`` is never called: no other
        process's connections can be left behind."""
        self._handler = handler
        self._seed = seed

    async def close(self) -> None:
        """Forget every stream."""
        self._streams.clear()

    async def ping(self) -> bool:
        """Always: nothing to lose touch with."""
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
            stream = _Stream(await self._seed(session_id), self._size)
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
        """Give ``body`` the session's next seq and hand it to the handler."""
        stream = await self._stream(session_id)
        stream.seq += 1
        event = Event(session_id, stream.seq, stream.epoch, kind, with_seq(body, stream.seq))
        stream.ring.append(event)
        stream.times.append(time.monotonic())
        assert self._handler is not None
        self._handler(event)
        return event

    async def subscribe(self, session_id: str) -> None:
        """Load the session's stream (one process: every publish is delivered)."""
        await self._stream(session_id)

    async def unsubscribe(self, session_id: str) -> None:
        """Nothing to stop: in one process every publish reaches the handler anyway."""

    async def position(self, session_id: str) -> Position:
        """The session's last seq and epoch."""
        stream = await self._stream(session_id)
        return Position(stream.seq, stream.epoch)

    async def history(self, session_id: str, after_seq: int, limit: int) -> HistorySlice:
        """Up to ``limit`` kept (and not expired) events after ``after_seq``, or unavailable."""
        stream = await self._stream(session_id)
        position = Position(stream.seq, stream.epoch)
        if after_seq > stream.seq:
            return HistorySlice((), position, False)
        horizon = time.monotonic() - self._ttl
        first = stream.seq + 1
        for event, at in zip(stream.ring, stream.times, strict=True):
            if at >= horizon:
                first = event.seq
                break
        if after_seq + 1 < first:
            return HistorySlice((), position, False)
        skip = len(stream.ring) - (stream.seq - after_seq)
        events = [stream.ring[i] for i in range(max(skip, 0), min(len(stream.ring), skip + limit))]
        return HistorySlice(events, position, True)
