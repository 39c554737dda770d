"""The hot paths' statements, on the database driver and a connection held for them.

What every publish, tool call and connect pays for: the event log's commits
(:mod:`companion_ws.store.appender`), a tool run's ledger and state
(:mod:`companion_ws.store.effects`), a connect's session head, new session and seed
(:mod:`companion_ws.store.connects`). Through a unit of work most of their cost was
SQLAlchemy's (a session, its transaction, the statement's compilation, the result's
rows); on the driver it is the database's. The tables and migrations stay SQLAlchemy's
and Alembic's; these few statements are SQL with named parameters (:class:`Statement`),
run in a :class:`Block` as each driver (aiosqlite, asyncpg) takes them.

One connection, taken from the engine's pool and kept checked out, used by one caller at
a time (:meth:`HeldConnection.use`). On SQLite it serves every block
(:meth:`HeldConnection.block`), so it is the one writer of the hot paths: two
connections writing at once would wait on each other's lock in SQLite's busy handler.
On PostgreSQL only the event log holds it; other blocks take pooled connections and run
side by side. A block that fails gives the held connection back to the pool as invalid
(the next use opens another) and the error goes up.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

__all__ = ["DIALECTS", "Block", "HeldConnection", "Statement", "Tx"]

#: The dialects with a driver path.
DIALECTS = frozenset({"sqlite", "postgresql"})


class Statement:
    """One SQL statement with named parameters (``:name``), as each driver takes it:
    ``?`` for aiosqlite, ``$1`` for asyncpg, with the arguments in that order."""

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self.names = tuple(_PARAMETER.findall(sql))  # in order of appearance, repeats too
        counter = iter(range(1, len(self.names) + 1))
        self._text = {
            "sqlite": _PARAMETER.sub("?", sql),
            "postgresql": _PARAMETER.sub(lambda _: f"${next(counter)}", sql),
        }

    def text(self, dialect: str) -> str:
        return self._text[dialect]

    def args(self, params: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(params[name] for name in self.names)


_PARAMETER = re.compile(r"(?<![:\w]):(\w+)")


class Block:
    """Statements on a driver's connection, and their transaction."""

    def __init__(self, dialect: str, conn: Any) -> None:
        self._dialect = dialect
        self._postgres = dialect == "postgresql"
        self._conn = conn

    async def row(self, statement: Statement, **params: Any) -> tuple[Any, ...] | None:
        sql, args = statement.text(self._dialect), statement.args(params)
        if self._postgres:
            found = await self._conn.fetchrow(sql, *args)
            return tuple(found) if found is not None else None
        rows = await self._conn.execute_fetchall(sql, args)
        return tuple(rows[0]) if rows else None

    async def rows(self, statement: Statement, **params: Any) -> list[tuple[Any, ...]]:
        sql, args = statement.text(self._dialect), statement.args(params)
        if self._postgres:
            return [tuple(found) for found in await self._conn.fetch(sql, *args)]
        return [tuple(found) for found in await self._conn.execute_fetchall(sql, args)]

    async def write(self, statement: Statement, **params: Any) -> int:
        """Run ``statement``; the rows it changed."""
        sql, args = statement.text(self._dialect), statement.args(params)
        if self._postgres:
            status = await self._conn.execute(sql, *args)
            return int(status.rsplit(" ", 1)[-1])  # "UPDATE 1", "INSERT 0 1"
        cursor = await self._conn.execute(sql, args)
        return int(cursor.rowcount)

    async def write_many(self, statement: Statement, rows: list[dict[str, Any]]) -> None:
        """Run ``statement`` once per row (the driver's ``executemany``)."""
        if rows:
            args = [statement.args(row) for row in rows]
            await self._conn.executemany(statement.text(self._dialect), args)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        """Committed when the block ends, unless it sets ``rollback`` or raises. (On
        SQLite the driver begins it before the first write.)"""
        tx = Tx()
        if self._postgres:
            transaction = self._conn.transaction()
            await transaction.start()
            end, undo = transaction.commit, transaction.rollback
        else:
            end, undo = self._conn.commit, self._conn.rollback
        try:
            yield tx
        except BaseException:
            await undo()
            raise
        await (undo() if tx.rollback else end())


class Tx:
    """A block's transaction: set ``rollback`` to end it without committing."""

    rollback = False


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
    async def use(self) -> AsyncIterator[Block]:
        """The connection for one block, nobody else's meanwhile. The block ends its own
        transaction (:meth:`Block.transaction`)."""
        async with self._lock:
            if self._driver is None:
                self._conn = await self.engine.connect()
                raw = await self._conn.get_raw_connection()
                self._driver = raw.driver_connection
            try:
                yield Block(self.dialect, self._driver)
            except BaseException:
                await self._discard()
                raise

    @asynccontextmanager
    async def block(self) -> AsyncIterator[Block]:
        """A block for statements that need no connection of their own: on SQLite the
        held one (the hot paths' one writer: no wait in SQLite's busy handler), on
        PostgreSQL one of the engine's pool (so that blocks run side by side)."""
        if self.dialect == "sqlite":
            async with self.use() as block:
                yield block
            return
        async with self.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            yield Block(self.dialect, raw.driver_connection)

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
