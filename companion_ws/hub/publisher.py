"""The one publish path: a typed server frame in, encoded once, sequenced by the broker,
appended to the event log. Every adapter's broadcast takes it.

It is also the one size limit of every door (docs/protocol.md section 4, v1.2): a frame is
:meth:`Publisher.seal`-ed (encoded and measured) before anything is sequenced, and one
whose frame, as clients receive it, would exceed ``max_event_bytes`` is refused with
:class:`~companion_ws.protocol.errors.PayloadTooLarge`, which each door maps to its own answer
(an ``error`` frame, HTTP 413, gRPC ``RESOURCE_EXHAUSTED``, a ``too_large`` dead
letter). A service whose broadcast follows a commit (a state change, a tool's effect)
seals its frame before the commit, so a refusal never leaves a commit unannounced.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from companion_ws import failpoints, telemetry
from companion_ws.broker.base import Broker
from companion_ws.metrics import Metrics
from companion_ws.protocol.codec import encode
from companion_ws.protocol.errors import CompanionError, Internal, PayloadTooLarge
from companion_ws.protocol.frames import BroadcastFrame, tag_of
from companion_ws.store.eventlog import EventLog
from companion_ws.values import Event

__all__ = ["SEQ_ROOM", "Publisher", "Sealed", "check_size"]

log = logging.getLogger("companion_ws.publisher")

#: What the broker's ``"seq":N,`` (any N below 2**64) adds to an encoded frame.
SEQ_ROOM = len(b'"seq":,') + 20


@dataclass(frozen=True, slots=True)
class Sealed:
    """A broadcast frame encoded once and measured: what the broker sequences."""

    session_id: str
    kind: str
    body: bytes


def check_size(body: bytes, limit: int, kind: str) -> None:
    """Raise PayloadTooLarge when ``body``, sequenced, would be over ``limit`` bytes. [pure]"""
    size = len(body) + SEQ_ROOM
    if size > limit:
        raise PayloadTooLarge(
            f"the {kind} event would be a {size}-byte frame, over the limit of {limit} "
            "bytes (COMPANION_MAX_EVENT_BYTES)",
            size=size,
            limit=limit,
        )


class Publisher:
    def __init__(
        self, broker: Broker, eventlog: EventLog, metrics: Metrics, *, max_event_bytes: int
    ) -> None:
        self._broker = broker
        self._eventlog = eventlog
        self._metrics = metrics
        self.max_event_bytes = max_event_bytes

    def seal(self, frame: BroadcastFrame, *, bounded: bool = True) -> Sealed:
        """``frame`` encoded; PayloadTooLarge when its frame would be over the limit.
        Only the hub's own bookkeeping (the tasks a session's end abandons) is not
        ``bounded``: it must never stop a session from ending."""
        kind = tag_of(type(frame))
        body = encode(frame)
        if bounded:
            check_size(body, self.max_event_bytes, kind)
        return Sealed(frame.session_id, kind, body)

    @telemetry.on_publish
    async def publish(self, frame: BroadcastFrame | Sealed, *, bounded: bool = True) -> Event:
        """Broadcast ``frame`` to every client of its session; answers its event."""
        sealed = frame if isinstance(frame, Sealed) else self.seal(frame, bounded=bounded)
        session_id = sealed.session_id
        if stall := failpoints.delay("stall_publish"):  # tests only: a stalled broker
            await asyncio.sleep(stall)
        try:
            event = await self._broker.publish(session_id, sealed.kind, sealed.body)
        except CompanionError:
            raise
        except Exception as exc:
            log.warning("publish to %s failed: %s", session_id, exc)
            raise Internal("the broker is unavailable; retry") from exc
        if not self._broker.journaled:
            self._eventlog.append(event)
        self._metrics.events.labels(sealed.kind).inc()
        return event

    async def swap_floor(self, sealed: Sealed, expect: str | None, floor: str) -> Event | None:
        """:meth:`publish` ``sealed`` only if the session's voice floor is ``expect``
        (None: any), making it ``floor`` (the broker's compare-and-set, docs/protocol.md
        section 17); None when the floor was another."""
        try:
            event = await self._broker.swap_floor(
                sealed.session_id, expect, floor, sealed.kind, sealed.body
            )
        except CompanionError:
            raise
        except Exception as exc:
            log.warning("publish to %s failed: %s", sealed.session_id, exc)
            raise Internal("the broker is unavailable; retry") from exc
        if event is not None:
            if not self._broker.journaled:
                self._eventlog.append(event)
            self._metrics.events.labels(sealed.kind).inc()
        return event

    async def publish_all(
        self, frames: Sequence[BroadcastFrame | Sealed], *, bounded: bool = True
    ) -> tuple[Event, ...]:
        """Broadcast ``frames`` in order. With a journaled broker they take their numbers
        at once, in order, and ride one commit; otherwise one after the other. Every
        frame is sealed first: one over the limit publishes none."""
        sealed = [f if isinstance(f, Sealed) else self.seal(f, bounded=bounded) for f in frames]
        if not self._broker.journaled:
            return tuple([await self.publish(frame) for frame in sealed])
        return tuple(await asyncio.gather(*(self.publish(frame) for frame in sealed)))
