"""The store: engine, units of work, migrations and health."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import cast

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Table, bindparam, select, text

import migrations
from companion_ws.store.effects import EffectStore
from companion_ws.store.engine import make_engine, make_sessionmaker
from companion_ws.store.held import HeldConnection
from companion_ws.store.models import SessionRow
from companion_ws.store.uow import UnitOfWork

_SESSIONS = cast(Table, SessionRow.__table__).c


@dataclass(frozen=True, slots=True)
class SessionHead:
    """What a connect needs of a session row: everything but its state document."""

    id: str
    owner_id: str
    expires_at: int
    ended_at: int | None
    end_reason: str | None
    state_version: int
    restored_from: str | None

    @classmethod
    def of(cls, row: SessionRow) -> SessionHead:
        return cls(
            row.id,
            row.owner_id,
            row.expires_at,
            row.ended_at,
            row.end_reason,
            row.state_version,
            row.restored_from,
        )


# One statement, compiled once (SQLAlchemy caches its compiled form by this object).
_HEAD = select(
    _SESSIONS.id,
    _SESSIONS.owner_id,
    _SESSIONS.expires_at,
    _SESSIONS.ended_at,
    _SESSIONS.end_reason,
    _SESSIONS.state_version,
    _SESSIONS.restored_from,
).where(_SESSIONS.id == bindparam("sid"))


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(Path(migrations.__file__).parent))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def head_revision() -> str:
    """The newest migration this code knows."""
    head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
    assert head is not None
    return head


class Store:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = make_engine(url)
        self._factory = make_sessionmaker(self.engine)
        # The hot paths' connection: the event log's appends, tool runs' ledger and state.
        self.held = HeldConnection(self.engine)
        self.effects = EffectStore(self.held)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self._factory)

    async def session_head(self, session_id: str) -> SessionHead | None:
        """The session as committed now, without its state: a Core statement on a pooled
        connection, no ORM unit of work (about half the CPU time of ``uow().sessions.get``
        on SQLite). Every connect reads it, so it is always fresh from the database."""
        async with self.engine.connect() as conn:
            found = (await conn.execute(_HEAD, {"sid": session_id})).first()
        return SessionHead(*found) if found is not None else None

    async def migrate(self) -> None:
        """``alembic upgrade head`` on this store's own connection."""

        def upgrade(conn: Connection) -> None:
            cfg = alembic_config(self.url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

        async with self.engine.begin() as conn:
            await conn.run_sync(upgrade)

    async def schema(self) -> tuple[str | None, str]:
        """The database's migration revision (None: never migrated) and the code's head."""

        def current(conn: Connection) -> str | None:
            return MigrationContext.configure(conn).get_current_revision()

        async with self.engine.connect() as conn:
            revision = await conn.run_sync(current)
        return revision, head_revision()

    async def schema_ready(self) -> bool:
        """The database answers and is migrated to the code's head."""
        try:
            revision, head = await self.schema()
        except Exception:
            return False
        return revision == head

    async def ping(self) -> bool:
        try:
            async with self.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception:
            return False
        return True

    async def close(self) -> None:
        await self.held.close()
        await self.engine.dispose()
