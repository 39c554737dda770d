"""The embedded broker's durable-before-visible path against a real database: nothing
is visible before its commit, a failed commit takes back the numbers nobody saw (no gap,
no reuse of a number anyone saw), and a full backlog refuses at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from companion_ws.broker.memory import MemoryBroker
from companion_ws.hub.seeder import Seeder
from companion_ws.protocol import frames as f
from companion_ws.protocol.codec import encode
from companion_ws.protocol.errors import Internal
from companion_ws.store.eventlog import EventLog
from companion_ws.store.store import Store
from companion_ws.values import Event, Leave
from tests.support.sessions import new_session


def body(n: int) -> bytes:
    return encode(f.ContextualUpdate(session_id="s1", text=f"n{n}"))


@pytest.fixture
async def store(tmp_path: Path) -> Store:
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'journal.db'}")
    await store.migrate()
    async with store.uow() as uow:
        uow.sessions.add(new_session("s1", ttl_ms=2**40))
        await uow.commit()
    return store


async def test_visible_only_after_commit_and_a_failed_commit_leaves_no_gap(store: Store) -> None:
    log = EventLog(store, interval=0.05, batch=100, ttl_ms=60_000)
    broker = MemoryBroker(journal=log)
    seen: list[Event] = []

    def leave(_: Leave) -> None:
        pass

    await broker.start(seen.append, Seeder(store, history_size=100, keep_epoch=True), leave)
    log.start()
    try:
        first = await broker.publish("s1", "contextual_update", body(1))
        assert [e.seq for e in seen] == [1] and first.seq == 1
        async with store.uow() as uow:
            assert await uow.events.max_seq("s1") == 1  # committed before it was seen

        async with store.engine.begin() as db:  # the database refuses writes
            await db.execute(text("ALTER TABLE events RENAME TO events_away"))
        with pytest.raises(Internal):
            await broker.publish("s1", "contextual_update", body(2))
        assert [e.seq for e in seen] == [1]  # nobody saw it
        assert (await broker.position("s1")).seq == 1  # its number is taken back

        async with store.engine.begin() as db:
            await db.execute(text("ALTER TABLE events_away RENAME TO events"))
        again = await broker.publish("s1", "contextual_update", body(3))
        assert again.seq == 2 and [e.seq for e in seen] == [1, 2]  # no gap
        page = await broker.history("s1", 0, 10)
        assert [e.seq for e in page.events] == [1, 2]
    finally:
        await log.stop()
        await store.close()


async def test_a_full_backlog_refuses_at_once_without_taking_a_number(store: Store) -> None:
    log = EventLog(store, interval=0.05, batch=100, ttl_ms=60_000, max_backlog=0)
    broker = MemoryBroker(journal=log)
    await broker.start(lambda e: None, Seeder(store, history_size=10, keep_epoch=True), print)
    try:
        with pytest.raises(Internal, match="not keeping up"):
            await broker.publish("s1", "contextual_update", body(1))
        assert (await broker.position("s1")).seq == 0
    finally:
        await store.close()
