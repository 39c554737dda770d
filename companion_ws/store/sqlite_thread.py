"""The held SQLite connection on a thread of the hub's own: one crossing per block.

Through aiosqlite every statement of a block, and its commit, is a trip to the driver's
thread and back (a queue, a future, a wake-up of the event loop): the event log's commit
of a batch was four of them, a tool run's commit five. Here a block's statements run
together on the thread: the block is the same ``async`` code as on the other drivers
(:class:`companion_ws.store.held.Block`), driven to its end on the thread by
:func:`drive` over a :class:`ThreadBlock` whose statements never suspend, so the event
loop pays one ``run_in_executor`` per block.

The connection is the hub's own ``sqlite3`` connection, opened on the thread with the
engine's pragmas (``store/engine.py``), so it is still the hot paths' one writer; a
block that fails is rolled back there, and a connection that cannot roll back is closed
(the next block opens another).

Its commits never checkpoint the WAL: SQLite's automatic checkpoint runs inside the
commit that crosses 1,000 pages and syncs the WAL and the database file, a stall of
15-20 ms on this machine's disk for every block queued behind it (a tool call's p99
at 100 calls/s: 20.9 ms on disk, 5.2 ms on tmpfs; bench/RESULTS-history.md). A
checkpointer thread of its own connection runs the same passive checkpoint every
:data:`CHECKPOINT_EVERY` seconds instead, beside the writer (a passive checkpoint
never waits for, nor blocks, the writer). Commits keep their durability
(``synchronous=NORMAL`` in WAL mode, as before).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import sqlite3
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

from companion_ws.store.engine import create_private
from companion_ws.store.held import Block, Statement, Tx

__all__ = ["SqliteThread", "ThreadBlock", "drive"]

T = TypeVar("T")

#: The engine's pragmas (store/engine.py ``_sqlite_pragmas``), on the thread's connection.
PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=30000",
)

#: How often the checkpointer runs a passive checkpoint of the WAL, seconds.
CHECKPOINT_EVERY = 0.2


class ThreadBlock(Block):
    """A block's statements on an ``sqlite3`` connection, run where they are awaited (on
    the thread): the coroutines never suspend."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        super().__init__("sqlite", conn)
        self._db = conn

    async def row(self, statement: Statement, **params: Any) -> tuple[Any, ...] | None:
        found = self._db.execute(statement.text("sqlite"), statement.args(params)).fetchone()
        return tuple(found) if found is not None else None

    async def rows(self, statement: Statement, **params: Any) -> list[tuple[Any, ...]]:
        cursor = self._db.execute(statement.text("sqlite"), statement.args(params))
        return [tuple(found) for found in cursor.fetchall()]

    async def write(self, statement: Statement, **params: Any) -> int:
        return int(self._db.execute(statement.text("sqlite"), statement.args(params)).rowcount)

    async def write_many(self, statement: Statement, rows: list[dict[str, Any]]) -> None:
        if rows:
            self._db.executemany(statement.text("sqlite"), [statement.args(r) for r in rows])

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Tx]:
        tx = Tx()
        try:
            yield tx
        except BaseException:
            self._db.rollback()
            raise
        if tx.rollback:
            self._db.rollback()
        else:
            self._db.commit()


def drive(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to its end here; it must not suspend (a :class:`ThreadBlock`'s
    statements never do). [pure but for what the coroutine does]"""
    try:
        coro.send(None)
    except StopIteration as done:
        result: T = done.value
        return result
    coro.close()
    raise RuntimeError("a block on the SQLite thread awaited something other than SQL")


Job = tuple[Callable[[Block], Awaitable[Any]], asyncio.Future[Any]]


class SqliteThread:
    """The hub's thread for its held connection to the SQLite file ``path``: a plain
    thread and a queue (a ``ThreadPoolExecutor`` costs more per job than the statements
    it saves), its answers handed back with ``call_soon_threadsafe``."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._jobs: queue.SimpleQueue[Job | None] | None = None
        self._thread: threading.Thread | None = None
        self._conn: sqlite3.Connection | None = None  # used on the thread only
        self._checkpointer: _Checkpointer | None = None

    async def run(self, body: Callable[[Block], Awaitable[T]]) -> T:
        """``body`` on the held connection, on the thread; its result or its error."""
        if self._jobs is None:
            self._start()
        assert self._jobs is not None
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._jobs.put((body, future))
        return await future

    def _start(self) -> None:
        self._jobs = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._work, args=(self._jobs,), name="companion-sqlite", daemon=True
        )
        self._thread.start()

    def _work(self, jobs: queue.SimpleQueue[Job | None]) -> None:
        while (job := jobs.get()) is not None:
            body, future = job
            try:
                result, error = self._run(body), None
            except BaseException as exc:  # handed to the caller, whatever it is
                result, error = None, exc
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                future.get_loop().call_soon_threadsafe(_settle, future, result, error)
        self._close()

    def _run(self, body: Callable[[Block], Awaitable[T]]) -> T:
        conn = self._conn if self._conn is not None else self._open()
        try:
            return drive(body(ThreadBlock(conn)))  # type: ignore[arg-type]
        except BaseException:
            self._recover(conn)
            raise
        finally:
            if conn.in_transaction:  # a block that only read, or forgot its end
                self._recover(conn)

    def _open(self) -> sqlite3.Connection:
        create_private(self._path)
        conn = sqlite3.connect(self._path, timeout=30, check_same_thread=False)
        for pragma in PRAGMAS:
            conn.execute(pragma)
        conn.execute("PRAGMA wal_autocheckpoint=0")  # the checkpointer's, off this thread
        if self._checkpointer is None:
            self._checkpointer = _Checkpointer(self._path)
            self._checkpointer.start()
        self._conn = conn
        return conn

    def _recover(self, conn: sqlite3.Connection) -> None:
        try:
            conn.rollback()
        except sqlite3.Error:
            self._conn = None
            conn.close()

    async def close(self) -> None:
        """Close the connection once the blocks already asked for have run."""
        jobs, thread, self._jobs, self._thread = self._jobs, self._thread, None, None
        if jobs is None or thread is None:
            return
        jobs.put(None)
        await asyncio.get_running_loop().run_in_executor(None, thread.join)

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
        checkpointer, self._checkpointer = self._checkpointer, None
        if checkpointer is not None:
            checkpointer.stop()


class _Checkpointer(threading.Thread):
    """Passive checkpoints of the WAL on a connection of its own, every
    :data:`CHECKPOINT_EVERY` seconds, until stopped."""

    def __init__(self, path: Path) -> None:
        super().__init__(name="companion-sqlite-checkpoint", daemon=True)
        self._path = path
        self._stopping = threading.Event()

    def run(self) -> None:
        conn = sqlite3.connect(self._path, timeout=30, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout=30000")
            while not self._stopping.wait(CHECKPOINT_EVERY):
                with contextlib.suppress(sqlite3.Error):  # busy now: the next one
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        finally:
            conn.close()

    def stop(self) -> None:
        self._stopping.set()
        self.join()


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
