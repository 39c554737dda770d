"""The event log's writer against a real database: ``stop`` lets the batch in hand
finish instead of cancelling it, and writes everything that was queued.

The hub once cancelled the writer at shutdown. On SQLite, a statement cancelled half-way
could leave the next one waiting forever, and SIGTERM then hung the process (a CI run
caught it). Here the stop lands at many points of a large batch."""

from __future__ import annotations

import asyncio

from sqlalchemy import func, select

from companion_ws.store.eventlog import EventLog
from companion_ws.store.models import EventRow
from companion_ws.store.store import Store
from companion_ws.values import Event
from tests.support.sessions import new_session

ROUNDS = 25
EVENTS_PER_ROUND = 3000


async def _new_session(store: Store, sid: str) -> None:
    async with store.uow() as uow:
        uow.sessions.add(new_session(sid))
        await uow.commit()


async def _stored(store: Store, sid: str) -> tuple[int, int]:
    async with store.uow() as uow:
        count = await uow.events.max_seq(sid)
        row = await uow.sessions.get(sid)
    assert row is not None
    return count, row.last_seq


async def test_stop_in_the_middle_of_a_batch_writes_everything(store: Store) -> None:
    for round_ in range(ROUNDS):
        sid = f"s{round_}"
        await _new_session(store, sid)
        log = EventLog(store, interval=0.001, batch=EVENTS_PER_ROUND, ttl_ms=60_000)
        log.start()
        payload = b'{"seq":0,"type":"contextual_update","text":"%d"}'
        for seq in range(1, EVENTS_PER_ROUND + 1):
            log.append(Event(sid, seq, "e1", "contextual_update", payload % seq))
        # Let the writer get into the batch, a little further each round.
        await asyncio.sleep(0.002 * (round_ % 10))
        async with asyncio.timeout(30):
            await log.stop()
        assert log.pending == 0
        assert await _stored(store, sid) == (EVENTS_PER_ROUND, EVENTS_PER_ROUND)

    async with store.uow() as uow, asyncio.timeout(30):
        # The store is still usable: nothing was left waiting.
        await uow.flush()
    async with store.engine.connect() as conn:
        total = (await conn.execute(select(func.count()).select_from(EventRow))).scalar_one()
    assert total == ROUNDS * EVENTS_PER_ROUND
