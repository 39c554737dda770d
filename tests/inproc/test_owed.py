"""The owed-broadcast rows' rules (companion_ws.store.owed, hub/owed.py): written only with
their effect's commit, taken over by one process, settled once. The crashes themselves:
tests/integration/test_owed_broadcasts.py."""

from __future__ import annotations

from companion_ws.protocol.codec import now_ms
from companion_ws.store.effects import LedgerRow, Verdict
from companion_ws.store.owed import OwedFrame
from companion_ws.store.store import Store
from tests.support.frames import bearer, new_user
from tests.support.inproc import inprocess_hub


def _owed(owner: str, sid: str, n: int, at: int) -> list[OwedFrame]:
    return [OwedFrame(owner, i, sid, "step", f'{{"i":{i}}}', 0, at, at) for i in range(n)]


async def test_owed_rows_commit_with_their_effect_and_are_taken_over_once(db_url: str) -> None:
    owner = new_user()
    async with inprocess_hub(db_url, owed_lease=3600) as hub:  # its own sweep stays away
        sid = (await hub.http.post("/sessions", headers=bearer(owner))).json()["session_id"]
        store = Store(db_url)
        try:
            at = now_ms() - 60_000
            ledger = LedgerRow("k1", sid, "t", "{}", False, at)
            assert await store.effects.commit(sid, ledger=ledger, owed=_owed("o1", sid, 2, at)) is (
                Verdict.COMMITTED
            )
            # The same key again: the ledger refuses it and no row is owed twice.
            again = await store.effects.commit(sid, ledger=ledger, owed=_owed("o2", sid, 1, at))
            assert again is Verdict.DUPLICATE and await store.owed.of("o2") == []
            assert [r.ordinal for r in await store.owed.of("o1")] == [0, 1]
            assert await store.owed.stale(now_ms() - 1000) == ["o1"]
            # Two processes see the stale claim; one takes it over.
            assert await store.owed.take("o1", at, now_ms()) is True
            assert await store.owed.take("o1", at, now_ms()) is False
            assert await store.owed.stale(now_ms() - 1000) == []  # freshly claimed
            await store.owed.settle("o1")
            assert await store.owed.of("o1") == []
        finally:
            await store.close()
