"""The event log's hot path: a batch of events in one commit, on a connection held for
the purpose, with the database driver's own ``executemany``.

Every broadcast event is committed before anyone sees it, so the cost of a commit is
paid by every publish the group commit cannot batch (a quiet session's events, one
at a time). Through a unit of work that cost is mostly SQLAlchemy's (a session, its
transaction, the statement's compilation and result): about 400 µs of CPU per commit
on SQLite, against 65 µs for the same insert and commit on the driver
(``bench/README.md``). The table and its migration are still SQLAlchemy's and
Alembic's; only this one statement is written in SQL, once per dialect.

The connection comes from the engine's pool and stays checked out. A failed write
gives it back to the pool as invalid (the next write opens another), and the error
goes up to the event log, which fails the batch's waiters.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

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
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name
        self._sql = _SQL.get(self._dialect)
        self._conn: AsyncConnection | None = None
        self._driver: Any = None

    @property
    def supported(self) -> bool:
        """Whether this database has a driver path (else: use a unit of work)."""
        return self._sql is not None

    async def append(self, events: Sequence[NewEvent]) -> None:
        """Insert ``events`` and commit; a row already there (written by another
        process) is skipped."""
        assert self._sql is not None
        rows = [(e.session_id, e.seq, e.epoch, e.type, e.payload, e.created_at) for e in events]
        driver = await self._connection()
        try:
            if self._dialect == "postgresql":
                async with driver.transaction():
                    await driver.executemany(self._sql, rows)
            else:
                await driver.executemany(self._sql, rows)
                await driver.commit()
        except BaseException:
            await self._discard()
            raise

    async def close(self) -> None:
        if self._conn is not None:
            await self._conn.close()
            self._conn = self._driver = None

    async def _connection(self) -> Any:
        if self._driver is None:
            self._conn = await self._engine.connect()
            raw = await self._conn.get_raw_connection()
            self._driver = raw.driver_connection
        return self._driver

    async def _discard(self) -> None:
        """Forget a connection whose transaction failed: it goes back invalidated."""
        conn, self._conn, self._driver = self._conn, None, None
        if conn is not None:
            try:
                await conn.invalidate()
                await conn.close()
            except Exception:  # the database is gone; the pool forgets it either way
                pass
