"""Recovery: bring one connection up to the session's present, by replaying what it
missed (paced to what it reads) or by one ``resync_required`` snapshot; and the
session's history for ``get_history`` and the HTTP API."""

from __future__ import annotations

import logging
from typing import Any

from companion_ws import telemetry
from companion_ws.broker.base import Broker
from companion_ws.hub.connection import Connection
from companion_ws.hub.locks import KeyedLock
from companion_ws.hub.resume_plan import Replay, plan_resume
from companion_ws.hub.state import StateService
from companion_ws.protocol import frames as f
from companion_ws.protocol.codec import decode_json, encode
from companion_ws.store.eventlog import EventLog
from companion_ws.store.store import Store
from companion_ws.values import Position
from ui_state import StateDoc

__all__ = ["REPLAY_PAGE", "Recovery"]

log = logging.getLogger("companion_ws.recovery")

REPLAY_PAGE = 256


class Recovery:
    def __init__(
        self,
        broker: Broker,
        state: StateService,
        store: Store,
        eventlog: EventLog,
        locks: KeyedLock,
        *,
        outbox_limit: int,
    ) -> None:
        self._broker = broker
        self._state = state
        self._store = store
        self._eventlog = eventlog
        self._locks = locks
        # A page must fit the send queue, or the replay itself closes the client 4409.
        self._page = min(REPLAY_PAGE, max(1, outbox_limit // 2))

    async def resumable(self, session_id: str, last_seq: int, epoch: str | None) -> bool:
        """Whether :meth:`resume` from ``last_seq`` would replay rather than resync."""
        page = await self._broker.history(session_id, last_seq, 1)
        return isinstance(
            plan_resume(last_seq, epoch, page.position, available=page.available), Replay
        )

    @telemetry.on_resume
    async def resume(
        self, conn: Connection, last_seq: int, epoch: str | None, request_id: str | None = None
    ) -> None:
        """Replay every event after ``last_seq``, then ``resumed``; or one
        ``resync_required`` snapshot when that history is gone or foreign. Live frames
        are held meanwhile and released after, so none slips in or comes twice."""
        sid = conn.session_id
        conn.hold()
        try:
            page = await self._broker.history(sid, last_seq, self._page)
            plan = plan_resume(last_seq, epoch, page.position, available=page.available)
            if not isinstance(plan, Replay):
                log.debug("resync of %s: %s", conn.id, plan.reason.value)
                await self._resync(conn, request_id)
                return
            cursor, replayed = last_seq, 0
            while page.events:
                for event in page.events:
                    conn.send(event.payload.decode())
                    cursor = event.seq
                    replayed += 1
                await conn.outbox.drained()  # pace the replay to what the client reads
                if cursor >= plan.until:
                    break
                page = await self._broker.history(sid, cursor, self._page)
                if not page.available:
                    await self._resync(conn, request_id)
                    return
            frame = f.Resumed(
                session_id=sid,
                requestId=f.opt(request_id),
                from_seq=last_seq,
                to_seq=cursor,
                replayed=replayed,
            )
            conn.send(encode(frame).decode())
            conn.release(cursor, page.position.epoch)
        except BaseException:
            if conn.held is not None:
                conn.release(conn.cursor, conn.epoch)
            raise

    async def _resync(self, conn: Connection, request_id: str | None) -> None:
        sid = conn.session_id
        position, doc = await self.snapshot(sid)
        frame = f.ResyncRequired(
            session_id=sid,
            requestId=f.opt(request_id),
            state=doc.state,
            version=doc.version,
            seq=position.seq,
            epoch=position.epoch,
        )
        conn.send(encode(frame).decode())
        conn.release(position.seq, position.epoch)

    async def snapshot(self, session_id: str) -> tuple[Position, StateDoc]:
        """The stream position and the state, consistent with each other: taken under
        the session's lock, position first, so the state includes every change whose
        broadcast has a seq at or below the position."""
        async with self._locks(session_id):
            position = await self._broker.position(session_id)
            return position, await self._state.load(session_id)

    async def repair(self, conn: Connection) -> None:
        """A connection saw a gap in live events (a lost broker message, or a broker
        that lost the history itself): replay the missing ones, or resync."""
        try:
            await self.resume(conn, conn.cursor, conn.epoch)
        except Exception as exc:
            log.warning("repairing %s failed: %s", conn.id, exc)

    async def history(self, session_id: str, after_seq: int, limit: int) -> f.History:
        """Events after ``after_seq``: from the broker's window when it covers them (it
        has every event of the current history, whoever published it), else from the
        database's long history, topped up from the window."""
        page = await self._broker.history(session_id, after_seq, limit)
        if page.available:
            events = [decode_json(e.payload) for e in page.events]
            last = page.events[-1].seq if page.events else after_seq
        else:
            await self._eventlog.flush()
            async with self._store.uow() as uow:
                rows = await uow.events.after(session_id, after_seq, limit)
            events = [decode_json(r.payload) for r in rows]
            last = rows[-1].seq if rows else after_seq
            if len(events) < limit:
                top_up = await self._broker.history(session_id, last, limit - len(events))
                if top_up.available:
                    events.extend(decode_json(e.payload) for e in top_up.events)
                    last = top_up.events[-1].seq if top_up.events else last
        position = await self._broker.position(session_id)
        return f.History(
            session_id=session_id,
            events=events,
            after_seq=after_seq,
            next_after_seq=last,
            latest_seq=position.seq,
            epoch=position.epoch,
            has_more=last < position.seq,
        )


def history_fields(frame: f.History) -> dict[str, Any]:
    """The HTTP body of a history page: the frame's fields without its envelope."""
    return {
        "events": frame.events,
        "after_seq": frame.after_seq,
        "next_after_seq": frame.next_after_seq,
        "latest_seq": frame.latest_seq,
        "epoch": frame.epoch,
        "has_more": frame.has_more,
    }
