"""The unit of work: one transaction, the repositories on it, an explicit commit.

    async with store.uow() as uow:
        row = await uow.sessions.get(sid)
        ...
        await uow.commit()

Leaving the block without ``commit()`` rolls back.

Never cancel a task while it is inside a unit of work. With SQLAlchemy 2.1 on aiosqlite,
a statement cancelled half-way (the connection is then terminated in the background) can
leave a later statement waiting forever for a result that never comes; it hung the hub's
shutdown before its background tasks were stopped by request instead of by
``Task.cancel`` (``tests/integration/test_eventlog.py``). So the hub's own tasks are told
to stop and finish their transaction, and a WebSocket read loop is only cancelled while
it waits for a frame (``companion_ws.endpoints.ws``).
"""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession as DBSession
from sqlalchemy.ext.asyncio import async_sessionmaker

from companion_ws.store.repositories import (
    DeviceRepository,
    EventRepository,
    JoinTokenRepository,
    SessionRepository,
)


class UnitOfWork:
    def __init__(self, factory: async_sessionmaker[DBSession]) -> None:
        self._factory = factory
        self._db: DBSession | None = None

    async def __aenter__(self) -> UnitOfWork:
        self._db = self._factory()
        self.sessions = SessionRepository(self._db)
        self.events = EventRepository(self._db)
        self.join_tokens = JoinTokenRepository(self._db)
        self.devices = DeviceRepository(self._db)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._db is not None
        # close() rolls back anything uncommitted and detaches the rows without
        # expiring them (rollback() would), so callers can keep reading them.
        await self._db.close()
        self._db = None

    async def commit(self) -> None:
        assert self._db is not None
        await self._db.commit()

    async def flush(self) -> None:
        assert self._db is not None
        await self._db.flush()
