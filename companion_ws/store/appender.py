"""The event log's hot path: a batch of events in one commit, on the store's held
connection (:mod:`companion_ws.store.held`), with the database driver's own
``executemany``.

Every broadcast event is committed before anyone sees it, so the cost of a commit is
paid by every publish the group commit cannot batch (a quiet session's events, one
at a time): about 400 µs of CPU per commit on SQLite through a unit of work, against
65 µs for the same insert and commit on the driver (``bench/README.md``). A failed
write goes up to the event log, which fails the batch's waiters.
"""

from __future__ import annotations

from collections.abc import Sequence

from companion_ws.store.held import HeldConnection
from companion_ws.store.repositories import NewEvent

__all__ = ["EventAppender"]

_COLUMNS = "session_id, seq, epoch, type, payload, created_at"
_SQL = {
    "sqlite": f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (session_id, seq) DO NOTHING",
    "postgresql": f"INSERT INTO events ({_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)"
    " ON CONFLICT (session_id, seq) DO NOTHING",
}


class EventAppender:
    def __init__(self, held: HeldConnection) -> None:
        self._held = held
        self._sql = _SQL.get(held.dialect)

    @property
    def supported(self) -> bool:
        """Whether this database has a driver path (else: use a unit of work)."""
        return self._sql is not None

    async def append(self, events: Sequence[NewEvent]) -> None:
        """Insert ``events`` and commit; a row already there (written by another
        process) is skipped."""
        assert self._sql is not None
        rows = [(e.session_id, e.seq, e.epoch, e.type, e.payload, e.created_at) for e in events]
        async with self._held.use() as driver:
            if self._held.dialect == "postgresql":
                async with driver.transaction():
                    await driver.executemany(self._sql, rows)
            else:
                await driver.executemany(self._sql, rows)
                await driver.commit()
