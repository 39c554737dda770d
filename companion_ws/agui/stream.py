"""One session, followed as AG-UI events: the opening (or the replay after the
client's seq), then live, with no gap and no repeat, until the session ends, the
reader stops, it falls too far behind, or its credential stops being good.

It reads the session through the node's services only (recovery for the snapshot and
the history, listeners for the live events), never the store or the broker. Live
events are queued in a bounded watch (count and bytes); a reader that lets it fill
gets ``RUN_ERROR`` ``too_slow`` and the stream ends (it resumes with
``Last-Event-ID``). Every item carries the seq its SSE ``id:`` takes, or None for an
event that must not move the client's position (so a stream cut between the events
of one frame resumes before that frame, never inside it).

The stream holds a :class:`~companion_ws.hub.streams.Ticket`: when it is cut (the
credential expired, or its device was revoked) the stream ends with ``RUN_ERROR``
carrying the reason's code (``token_expired``, ``forbidden``, ``unauthorized``).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from ag_ui.core import BaseEvent

from companion_ws.agui.projection import Projection
from companion_ws.hub.listeners import Listeners
from companion_ws.hub.recovery import Recovery
from companion_ws.hub.streams import Ticket
from companion_ws.protocol.codec import decode_json
from companion_ws.values import Event

__all__ = ["HEARTBEAT", "Item", "SessionStream", "StreamLimits"]

#: Seconds without an event before a keep-alive comment (proxies, dead readers).
HEARTBEAT = 15.0
_PAGE = 256


@dataclass(frozen=True)
class Item:
    """One AG-UI event and the seq its SSE ``id:`` names (None: no ``id:`` line); or,
    with ``event`` None, a keep-alive."""

    event: BaseEvent | None
    seq: int | None = None


@dataclass(frozen=True)
class StreamLimits:
    max_events: int = 1024  # live events queued for a reader, at most
    max_bytes: int = 1 << 20  # and their bytes
    heartbeat: float = HEARTBEAT


def _items(events: list[BaseEvent], seq: int) -> list[Item]:
    """A frame's events: only the last carries the frame's seq."""
    return [Item(e, seq if i == len(events) - 1 else None) for i, e in enumerate(events)]


class SessionStream:
    def __init__(self, recovery: Recovery, listeners: Listeners, limits: StreamLimits) -> None:
        self._recovery = recovery
        self._listeners = listeners
        self._limits = limits

    async def follow(
        self,
        session_id: str,
        after: int | None,
        run_id: str,
        stop: asyncio.Event,
        ticket: Ticket,
    ) -> AsyncIterator[Item]:
        """The session as AG-UI events, from after ``after`` when that is still in the
        history (else from the opening snapshots), until it ends, ``stop`` is set or
        ``ticket`` is cut."""
        projection = Projection(session_id, run_id)
        if ticket.cut.is_set():  # refused as it opened: nothing of the session
            yield _cut(projection, ticket)
            return
        limits = self._limits
        async with self._listeners.watch(
            session_id, limit=limits.max_events, max_bytes=limits.max_bytes
        ) as watch:
            if after is not None and await self._recovery.resumable(session_id, after, None):
                await self._fold(projection, session_id, after)
                position, doc = await self._recovery.snapshot(session_id)
                projection.start_at(doc.state, position.seq)
                yield Item(projection.run_started())
                cursor = after
            else:
                position, doc = await self._recovery.snapshot(session_id)
                projection.start_at(doc.state, position.seq)
                await self._fold(projection, session_id, position.seq)
                for item in _items(projection.opening(), position.seq):
                    yield item
                cursor = position.seq
            if projection.ended:
                yield Item(projection.finished(), cursor)
                return
            replay = True  # from the history: at the start, and after a gap
            while not stop.is_set():
                if replay:
                    replay = False
                    async for frame in self._history(session_id, cursor, stop):
                        cursor = frame["seq"]
                        for item in _items(projection.project(frame), cursor):
                            yield item
                        if projection.ended:
                            return
                live = await self._next(watch.get(), stop, ticket)
                if live is _STOPPED:
                    return
                if live is _CUT:
                    yield _cut(projection, ticket)
                    return
                if live is _IDLE:
                    yield Item(None)
                    continue
                if live is None:
                    yield Item(
                        projection.error(
                            "too_slow",
                            "this reader fell behind the session: reconnect with "
                            "Last-Event-ID to resume",
                        )
                    )
                    return
                assert isinstance(live, Event)
                if live.seq <= cursor:
                    continue  # replayed already
                if live.seq > cursor + 1:
                    replay = True  # past a gap: the history fills it, this one included
                    continue
                cursor = live.seq
                for item in _items(projection.project(decode_json(live.payload)), cursor):
                    yield item
                if projection.ended:
                    return

    async def _fold(self, projection: Projection, session_id: str, until: int) -> None:
        """The conversation up to ``until``, from the session's history."""
        cursor = 0
        while cursor < until:
            page = await self._recovery.history(session_id, cursor, _PAGE)
            for frame in page.events:
                if frame["seq"] > until:
                    return
                projection.fold(frame)
            if not page.events or not page.has_more:
                return
            cursor = page.next_after_seq

    async def _history(
        self, session_id: str, cursor: int, stop: asyncio.Event
    ) -> AsyncIterator[Mapping[str, Any]]:
        """The events after ``cursor`` that the history holds now."""
        while not stop.is_set():
            page = await self._recovery.history(session_id, cursor, _PAGE)
            for frame in page.events:
                yield frame
            if not page.events or not page.has_more:
                return
            cursor = page.next_after_seq

    async def _next(self, get: Any, stop: asyncio.Event, ticket: Ticket) -> object:
        """The next live event; ``_IDLE`` after a heartbeat's silence, ``_STOPPED``,
        or ``_CUT`` (before any event: a cut credential reads nothing more)."""
        if ticket.cut.is_set():
            get.close()
            return _CUT
        getter = asyncio.ensure_future(get)
        stopper = asyncio.ensure_future(stop.wait())
        cutter = asyncio.ensure_future(ticket.cut.wait())
        try:
            done, _ = await asyncio.wait(
                {getter, stopper, cutter},
                timeout=self._limits.heartbeat,
                return_when=asyncio.FIRST_COMPLETED,
            )
        finally:
            for waiter in (stopper, cutter):
                waiter.cancel()
            if not getter.done():
                getter.cancel()
            for waiter in (stopper, cutter):
                with contextlib.suppress(asyncio.CancelledError):
                    await waiter
        if ticket.cut.is_set():
            return _CUT
        if getter in done:
            return getter.result()
        if stop.is_set():
            return _STOPPED
        return _IDLE


def _cut(projection: Projection, ticket: Ticket) -> Item:
    """The last event of a stream whose credential stopped being good."""
    reason = ticket.reason
    assert reason is not None
    return Item(projection.error(reason.code, reason.message))


_STOPPED = object()
_IDLE = object()
_CUT = object()
