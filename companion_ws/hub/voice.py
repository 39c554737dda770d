"""The voice floor (docs/protocol.md section 17): which connection of a session holds
the voice conversation, and the controls any screen sends to it.

The floor is not a lock beside the session: every change of it is a ``voice_floor``
event in the session's log, published by the broker's compare-and-set
(:meth:`~companion_ws.broker.base.Broker.swap_floor`), which sets the floor and takes
the event's ``seq`` in one step. So the floor changes in ``seq`` order on every
process, its history is the session's history, and a change made on a stale reading
(another process moved the floor meanwhile) publishes nothing and is read again.

The broker keeps the floor as an opaque string: :func:`holder_text` of the holder's
``{"device_id", "connection_id"}``, ``""`` for none.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any

from companion_ws.broker.base import Broker
from companion_ws.hub.connection import Connection
from companion_ws.hub.publisher import Publisher
from companion_ws.protocol import frames as f
from companion_ws.protocol.errors import Internal, NoVoice

__all__ = ["VoiceFloor", "holder_of", "holder_text"]

#: Compare-and-set attempts before a change is answered ``internal`` (retry).
ATTEMPTS = 8

Holder = dict[str, str]
Spawn = Callable[[Coroutine[Any, Any, Any]], None]


def holder_of(text: str) -> Holder | None:
    """The holder the broker's floor string names, or None. [pure]"""
    return json.loads(text) if text else None


def holder_text(device_id: str, connection_id: str) -> str:
    """The broker's floor string for a holder (key order fixed: it is compared). [pure]"""
    return json.dumps({"device_id": device_id, "connection_id": connection_id})


class VoiceFloor:
    def __init__(self, broker: Broker, publisher: Publisher, spawn: Spawn, *, grace: float) -> None:
        self._broker = broker
        self._publisher = publisher
        self._spawn = spawn
        self._grace = grace
        self._took: set[str] = set()  # connections here that took the floor
        self._timers: dict[str, asyncio.TimerHandle] = {}  # connection id -> its grace

    async def holder(self, session_id: str) -> Holder | None:
        """Who holds the floor now (the welcome's ``voice_floor``)."""
        return holder_of(await self._broker.floor(session_id))

    async def holds(self, conn: Connection) -> bool:
        """Whether ``conn`` holds the floor now."""
        current = await self.holder(conn.session_id)
        return current is not None and current["connection_id"] == conn.id

    async def take(self, conn: Connection, request_id: str | None) -> None:
        """``conn`` holds the floor, whoever held it (a take always wins; the order of
        two takes is their ``seq`` order)."""
        new = holder_text(conn.device_id, conn.id)
        self._took.add(conn.id)
        await self._swap(
            conn.session_id,
            lambda current: True,
            new,
            conn.device_id,
            conn.id,
            "taken",
            request_id,
            conn.id,
        )

    async def release(self, conn: Connection, request_id: str | None) -> None:
        """``conn`` gives the floor up; ``no_voice`` when it does not hold it."""
        if not await self.release_if(
            conn.session_id, conn.id, "released", request_id=request_id, sender=conn.id
        ):
            raise NoVoice("this connection does not hold the voice floor")

    async def release_if(
        self,
        session_id: str,
        connection_id: str | None,
        reason: f.VoiceFloorReason,
        *,
        request_id: str | None = None,
        sender: str | None = None,
    ) -> bool:
        """Free the floor if ``connection_id`` holds it (None: whoever does); False when
        it does not (nothing is published)."""

        def held(current: Holder | None) -> bool:
            return current is not None and connection_id in (None, current["connection_id"])

        return await self._swap(session_id, held, "", None, None, reason, request_id, sender)

    async def control(
        self, conn: Connection, action: f.ControlAction, request_id: str | None
    ) -> None:
        """Broadcast ``agent_control`` to the holder; ``end`` also frees the floor."""
        sid = conn.session_id
        current = await self.holder(sid)
        if current is None:
            raise NoVoice("nobody holds the voice conversation")
        await self._publisher.publish(
            f.AgentControl(
                session_id=sid,
                requestId=f.opt(request_id),
                action=action,
                device_id=current["device_id"],
                sender=conn.id,
            )
        )
        if action == "end":
            await self.release_if(sid, current["connection_id"], "ended", sender=conn.id)

    def left(self, session_id: str, connection_id: str, *, here: bool = True) -> None:
        """A connection closed (``here``: one of this process's, else one of a process
        that died): if it still holds the floor once its grace has passed (it did not
        come back and take it again), the floor is freed."""
        if here and connection_id not in self._took:
            return  # it never took the floor: nothing to free
        self._took.discard(connection_id)

        def expired() -> None:
            self._timers.pop(connection_id, None)
            self._spawn(self.release_if(session_id, connection_id, "gone"))

        loop = asyncio.get_running_loop()
        self._timers[connection_id] = loop.call_later(self._grace, expired)

    def stop(self) -> None:
        """The process is stopping: the graces still running end with it (another
        process frees the floor of a process that dies: its connections' leave)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    async def _swap(
        self,
        session_id: str,
        applies: Callable[[Holder | None], bool],
        new: str,
        device_id: str | None,
        connection_id: str | None,
        reason: f.VoiceFloorReason,
        request_id: str | None,
        sender: str | None,
    ) -> bool:
        """The compare-and-set loop: read the floor, and if the change ``applies`` to
        it, publish ``voice_floor`` expecting that floor; again when it moved."""
        for _attempt in range(ATTEMPTS):
            raw = await self._broker.floor(session_id)
            current = holder_of(raw)
            if not applies(current):
                return False
            frame = f.VoiceFloor(
                session_id=session_id,
                requestId=f.opt(request_id),
                device_id=device_id,
                connection_id=connection_id,
                previous_device_id=current["device_id"] if current else None,
                reason=reason,
                sender=sender,
            )
            sealed = self._publisher.seal(frame)
            if await self._publisher.swap_floor(sealed, raw, new) is not None:
                return True
        raise Internal("the voice floor is changing too fast; retry")
