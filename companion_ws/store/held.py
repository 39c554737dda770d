"""A database connection held for the hot paths and used through its driver.

The event log's appends (:mod:`companion_ws.store.appender`) and a tool run's ledger
and state (:mod:`companion_ws.store.effects`) are the statements every publish and
every tool call pays for. Through a unit of work most of their cost is SQLAlchemy's (a
session, its transaction, the statement's compilation, the result's rows); on the
driver's own connection it is the database's. The tables and migrations stay
SQLAlchemy's and Alembic's; only these few statements are written in SQL, once per
dialect.

One connection, taken from the engine's pool and kept checked out, used by one caller at
a time (:meth:`HeldConnection.use`). On SQLite that also makes it the one writer of the
hot paths: two connections writing at once would wait on each other's lock in SQLite's
busy handler. A block that fails gives the connection back to the pool as invalid (the
next use opens another) and the error goes up.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["HeldConnection"]

#: The dialects with SQL written for the driver (else the callers use a unit of work).
DIALECTS = frozenset({"sqlite", "postgresql"})


class HeldConnection:
    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.dialect = engine.dialect.name
        self._lock = asyncio.Lock()
        self._conn: AsyncConnection | None = None
        self._driver: Any = None

    @property
    def supported(self) -> bool:
        """Whether this database has a driver path."""
        return self.dialect in DIALECTS

    @asynccontextmanager
    async def use(self) -> AsyncIterator[Any]:
        """The driver's connection (``aiosqlite.Connection``, ``asyncpg.Connection``)
        for one block, nobody else's meanwhile. The block ends its own transaction."""
        async with self._lock:
            if self._driver is None:
                self._conn = await self.engine.connect()
                raw = await self._conn.get_raw_connection()
                self._driver = raw.driver_connection
            try:
                yield self._driver
            except BaseException:
                await self._discard()
                raise

    async def close(self) -> None:
        async with self._lock:
            if self._conn is not None:
                await self._conn.close()
                self._conn = self._driver = None

    async def _discard(self) -> None:
        """Forget a connection whose transaction failed: it goes back invalidated."""
        conn, self._conn, self._driver = self._conn, None, None
        if conn is not None:
            try:
                await conn.invalidate()
                await conn.close()
            except Exception:  # the database is gone; the pool forgets it either way
                pass
