"""The hot paths' statements on the driver (``store/held.py``, ``effects.py``,
``connects.py``, ``appender.py``) against real SQLite and PostgreSQL, read back through
the ORM: what they write is what the rest of the hub reads."""

from __future__ import annotations

import asyncio

from companion_ws.protocol.codec import now_ms
from companion_ws.store.appender import EventAppender
from companion_ws.store.effects import LedgerRow, StateWrite, Verdict
from companion_ws.store.repositories import NewEvent
from companion_ws.store.store import Store
from companion_ws.values import Session
from tests.support.sessions import new_session


def _session(sid: str, *, state: str = "{}", version: int = 0) -> Session:
    return new_session(sid, state=state, version=version, restored_from="earlier")


def _write(old: int, state: str, version: int) -> StateWrite:
    now = now_ms()
    return StateWrite(
        from_version=old, state=state, version=version, now=now, expires_at=now + 90_000
    )


def _ledger(key: str, sid: str, result: str = '{"ok":true}') -> LedgerRow:
    return LedgerRow(key, sid, "get_quotes", result, False, now_ms())


async def test_a_created_session_reads_back_whole(store: Store) -> None:
    await store.connects.create(_session("s1", state='{"a":1}', version=3))
    async with store.uow() as uow:
        row = await uow.sessions.get("s1")
    assert row is not None
    assert (row.owner_id, row.state, row.state_version, row.epoch, row.epoch_clean) == (
        "alice",
        '{"a":1}',
        3,
        "e1",
        True,
    )
    assert (row.ended_at, row.end_reason, row.restored_from) == (None, None, "earlier")
    head = await store.session_head("s1")
    assert head is not None and head.state_version == 3 and head.restored_from == "earlier"
    assert await store.session_head("nobody") is None


async def test_a_state_change_and_its_ledger_row_commit_together_or_not_at_all(
    store: Store,
) -> None:
    await store.connects.create(_session("s1"))
    recorded, row = await store.effects.read("s1", "call-1")
    assert recorded is None and row is not None and (row.state, row.version) == ("{}", 0)

    verdict = await store.effects.commit(
        "s1", state=_write(0, '{"q":1}', 1), ledger=_ledger("call-1", "s1")
    )
    assert verdict is Verdict.COMMITTED
    recorded, row = await store.effects.read("s1", "call-1")
    assert recorded is not None and recorded.session_id == "s1" and not recorded.is_error
    assert row is not None and (row.state, row.version) == ('{"q":1}', 1)

    # The same id again: nothing written, the state change included.
    verdict = await store.effects.commit(
        "s1", state=_write(1, '{"q":2}', 2), ledger=_ledger("call-1", "s1", "other")
    )
    assert verdict is Verdict.DUPLICATE
    recorded, row = await store.effects.read("s1", "call-1")
    assert recorded is not None and recorded.result == '{"ok":true}'
    assert row is not None and row.version == 1

    # A state that moved on: nothing written, the ledger row included.
    verdict = await store.effects.commit(
        "s1", state=_write(0, '{"q":3}', 1), ledger=_ledger("call-2", "s1")
    )
    assert verdict is Verdict.CONFLICT
    assert await store.effects.recorded("call-2") is None

    # The connection is still good after both refusals.
    assert await store.effects.commit("s1", ledger=_ledger("call-3", "s1")) is Verdict.COMMITTED
    await store.effects.backdate("call-3")
    backdated = await store.effects.recorded("call-3")
    assert backdated is not None and backdated.created_at == 0


async def test_the_event_log_commit_writes_events_and_the_sessions_bookkeeping(
    store: Store,
) -> None:
    await store.connects.create(_session("s1"))
    appender = EventAppender(store.held)
    events = [NewEvent("s1", seq, "e1", "contextual_update", "{}", now_ms()) for seq in (1, 2)]
    later = now_ms() + 5_000
    await appender.append(events, seqs={"s1": 2}, activity={"s1": later}, ttl_ms=1_000)
    await appender.append(events[:1])  # written by another process already: skipped
    seed = await store.connects.seed("s1", history=10)
    assert seed.last_seq == 2 and [e.seq for e in seed.recent] == [1, 2]
    async with store.uow() as uow:
        row = await uow.sessions.get("s1")
    assert row is not None
    assert (row.last_seq, row.last_activity_at, row.expires_at) == (2, later, later + 1_000)

    await store.connects.set_epoch("s1", "e2", clean=False)
    seed = await store.connects.seed("s1", history=1)
    assert (seed.epoch, seed.epoch_clean, [e.seq for e in seed.recent]) == ("e2", False, [2])
    nothing = await store.connects.seed("nobody", history=10)
    assert nothing.epoch is None and nothing.last_seq == 0


async def test_blocks_of_many_callers_at_once_all_commit(store: Store) -> None:
    """On SQLite they take turns on the one held connection; on PostgreSQL they run on
    pooled connections side by side."""
    await store.connects.create(_session("s1"))
    verdicts = await asyncio.gather(
        *(store.effects.commit("s1", ledger=_ledger(f"k{i}", "s1")) for i in range(40))
    )
    assert set(verdicts) == {Verdict.COMMITTED}
    found = await asyncio.gather(*(store.effects.recorded(f"k{i}") for i in range(40)))
    assert all(r is not None for r in found)
