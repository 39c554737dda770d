"""The async engine and its session factory."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.ext.asyncio import AsyncSession as DBSession

#: The database file and its ``-wal``/``-shm`` files: readable and writable by their
#: owner only (docs/protocol.md section 7, v1.2). SQLite gives the two the main file's mode.
PRIVATE_MODE = 0o600


def sqlite_file(url: str) -> Path | None:
    """The file an SQLite URL opens (None: in memory, or not SQLite)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return None
    database = parsed.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def create_private(path: Path) -> None:
    """Create ``path`` empty with :data:`PRIVATE_MODE` unless it exists (SQLite takes
    an empty file as an empty database), whatever the process's umask. A file that
    cannot be made here (no such directory) is left to SQLite to report."""
    with contextlib.suppress(FileExistsError, OSError):
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_MODE))


def make_engine(url: str) -> AsyncEngine:
    kwargs: dict[str, Any] = {}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs.update(pool_size=10, max_overflow=10, pool_pre_ping=True)
    engine = create_async_engine(url, **kwargs)
    path = sqlite_file(url)
    if path is not None:

        @event.listens_for(engine.sync_engine, "do_connect")
        def _private_file(*_args: Any) -> None:
            # Before SQLite opens (and would create) the file: whoever connects first,
            # the hub or ``companion-ws migrate``, creates it private.
            create_private(path)

    if url.startswith("sqlite"):

        @event.listens_for(engine.sync_engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA busy_timeout=30000")
            cursor.close()

    return engine


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[DBSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
