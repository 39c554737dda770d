"""The store: engine, units of work, migrations and health."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text

import migrations
from companion_ws.store.connects import ConnectStore
from companion_ws.store.effects import EffectStore
from companion_ws.store.engine import make_engine, make_sessionmaker
from companion_ws.store.held import HeldConnection
from companion_ws.store.owed import OwedStore
from companion_ws.store.uow import UnitOfWork
from companion_ws.values import SessionHead


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
        self.connects = ConnectStore(self.held)
        self.owed = OwedStore(self.held)

    def uow(self) -> UnitOfWork:
        return UnitOfWork(self._factory)

    async def session_head(self, session_id: str) -> SessionHead | None:
        """The session as committed now, without its state (every connect reads it, so
        it is always fresh from the database)."""
        return await self.connects.head(session_id)

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
