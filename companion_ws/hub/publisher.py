"""The one publish path: a typed server frame in, encoded once, sequenced by the broker,
appended to the event log. Every adapter's broadcast takes it."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence

from companion_ws.broker.base import Broker, Event
from companion_ws.errors import CompanionError, Internal
from companion_ws.metrics import Metrics
from companion_ws.protocol.codec import encode
from companion_ws.protocol.frames import BroadcastFrame, tag_of
from companion_ws.store.eventlog import EventLog

__all__ = ["Publisher"]

log = logging.getLogger("companion_ws.publisher")


class Publisher:
    def __init__(self, broker: Broker, eventlog: EventLog, metrics: Metrics) -> None:
        self._broker = broker
        self._eventlog = eventlog
        self._metrics = metrics

    async def publish(self, frame: BroadcastFrame) -> Event:
        """Broadcast ``frame`` to every client of its session; answers its event."""
        kind = tag_of(type(frame))
        session_id = frame.session_id
        try:
            event = await self._broker.publish(session_id, kind, encode(frame))
        except CompanionError:
            raise
        except Exception as exc:
            log.warning("publish to %s failed: %s", session_id, exc)
            raise Internal("the broker is unavailable; retry") from exc
        if not self._broker.journaled:
            self._eventlog.append(event)
        self._metrics.events.labels(kind).inc()
        return event

    async def publish_all(self, frames: Sequence[BroadcastFrame]) -> tuple[Event, ...]:
        """Broadcast ``frames`` in order. With a journaled broker they take their numbers
        at once, in order, and ride one commit; otherwise one after the other."""
        if not self._broker.journaled:
            return tuple([await self.publish(frame) for frame in frames])
        return tuple(await asyncio.gather(*(self.publish(frame) for frame in frames)))
