"""Repositories: queries and changes on one AsyncSession. They never commit; the unit
of work does."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession as DBSession

from companion_ws.store.models import (
    DeviceRow,
    EventRow,
    JoinTokenRow,
    OwedEventRow,
    SessionRow,
    ToolCallRow,
)
from companion_ws.values import Device, Event, JoinCode, Session


@dataclass(frozen=True, slots=True)
class NewEvent:
    session_id: str
    seq: int
    epoch: str
    type: str
    payload: str
    created_at: int


class SessionRepository:
    def __init__(self, db: DBSession) -> None:
        self._db = db

    async def get(self, session_id: str, *, for_update: bool = False) -> Session | None:
        stmt = select(SessionRow).where(SessionRow.id == session_id)
        if for_update:
            stmt = stmt.with_for_update()
        row = (await self._db.execute(stmt)).scalar_one_or_none()
        return _session(row) if row is not None else None

    def add(self, session: Session) -> None:
        self._db.add(SessionRow(**{f: getattr(session, f) for f in _SESSION_FIELDS}))

    async def save_state(
        self,
        session_id: str,
        *,
        from_version: int,
        state: str,
        version: int,
        now: int,
        expires_at: int,
    ) -> bool:
        """Compare-and-set the state: False when another writer got there first."""
        result = await self._db.execute(
            update(SessionRow)
            .where(SessionRow.id == session_id, SessionRow.state_version == from_version)
            .values(state=state, state_version=version, last_activity_at=now, expires_at=expires_at)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def end(self, session_id: str, *, reason: str, now: int) -> bool:
        result = await self._db.execute(
            update(SessionRow)
            .where(SessionRow.id == session_id, SessionRow.ended_at.is_(None))
            .values(ended_at=now, end_reason=reason)
        )
        return bool(getattr(result, "rowcount", 0) == 1)

    async def expired(self, now: int, limit: int = 500) -> Sequence[str]:
        stmt = (
            select(SessionRow.id)
            .where(SessionRow.ended_at.is_(None), SessionRow.expires_at <= now)
            .limit(limit)
        )
        return (await self._db.execute(stmt)).scalars().all()

    async def ended_before(self, cutoff: int, limit: int = 500) -> Sequence[str]:
        """Sessions that ended before ``cutoff`` (at most ``limit``): past retention."""
        stmt = (
            select(SessionRow.id)
            .where(SessionRow.ended_at.is_not(None), SessionRow.ended_at < cutoff)
            .order_by(SessionRow.ended_at)
            .limit(limit)
        )
        return (await self._db.execute(stmt)).scalars().all()

    async def purge(self, session_ids: Sequence[str]) -> int:
        """Delete the sessions with their events, tool-call ledger rows and join tokens.
        The children go first, explicitly, rather than relying on ``ON DELETE CASCADE``
        (SQLite enforces it only with its foreign-key pragma on). Answers the number of
        sessions deleted."""
        ids = list(session_ids)
        if not ids:
            return 0
        await self._db.execute(delete(EventRow).where(EventRow.session_id.in_(ids)))
        await self._db.execute(delete(ToolCallRow).where(ToolCallRow.session_id.in_(ids)))
        await self._db.execute(delete(JoinTokenRow).where(JoinTokenRow.session_id.in_(ids)))
        await self._db.execute(delete(DeviceRow).where(DeviceRow.session_id.in_(ids)))
        await self._db.execute(delete(OwedEventRow).where(OwedEventRow.session_id.in_(ids)))
        result = await self._db.execute(
            delete(SessionRow).where(SessionRow.id.in_(ids), SessionRow.ended_at.is_not(None))
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def mark_clean(self, session_ids: Iterable[str]) -> None:
        ids = list(session_ids)
        if ids:
            await self._db.execute(
                update(SessionRow).where(SessionRow.id.in_(ids)).values(epoch_clean=True)
            )

    async def page(
        self,
        *,
        limit: int,
        after_id: str | None = None,
        owner_id: str | None = None,
        active: bool | None = None,
    ) -> list[Session]:
        stmt = select(SessionRow).order_by(SessionRow.id).limit(limit)
        if after_id is not None:
            stmt = stmt.where(SessionRow.id > after_id)
        if owner_id is not None:
            stmt = stmt.where(SessionRow.owner_id == owner_id)
        if active is True:
            stmt = stmt.where(SessionRow.ended_at.is_(None))
        elif active is False:
            stmt = stmt.where(SessionRow.ended_at.is_not(None))
        return [_session(row) for row in (await self._db.execute(stmt)).scalars()]


class EventRepository:
    def __init__(self, db: DBSession) -> None:
        self._db = db

    async def after(self, session_id: str, after_seq: int, limit: int) -> list[Event]:
        stmt = (
            select(EventRow)
            .where(EventRow.session_id == session_id, EventRow.seq > after_seq)
            .order_by(EventRow.seq)
            .limit(limit)
        )
        return [_event(row) for row in (await self._db.execute(stmt)).scalars()]

    async def of_type(self, session_id: str, type_: str, after_seq: int, limit: int) -> list[Event]:
        """The session's events of one type after ``after_seq``, by seq (at most ``limit``)."""
        stmt = (
            select(EventRow)
            .where(
                EventRow.session_id == session_id,
                EventRow.type == type_,
                EventRow.seq > after_seq,
            )
            .order_by(EventRow.seq)
            .limit(limit)
        )
        return [_event(row) for row in (await self._db.execute(stmt)).scalars()]

    async def max_seq(self, session_id: str) -> int:
        stmt = select(func.max(EventRow.seq)).where(EventRow.session_id == session_id)
        value = (await self._db.execute(stmt)).scalar_one_or_none()
        return int(value or 0)


def code_hash(code: str) -> str:
    """What the store keeps of a join code: its SHA-256, in hex. A code is random and
    lives minutes, so a plain hash is enough to make a read database useless for
    joining (docs/protocol.md section 7, v1.2)."""
    return hashlib.sha256(code.encode()).hexdigest()


class JoinTokenRepository:
    """One-time join codes, kept by :func:`code_hash`: the code goes in and is looked up
    as given, and is never written."""

    def __init__(self, db: DBSession) -> None:
        self._db = db

    def add(
        self, code: str, *, session_id: str, created_by: str, expires_at: int, role: str
    ) -> None:
        self._db.add(
            JoinTokenRow(
                code_hash=code_hash(code),
                session_id=session_id,
                created_by=created_by,
                expires_at=expires_at,
                role=role,
            )
        )

    async def consume(self, code: str, now: int) -> JoinCode | None:
        """Atomically mark an unexpired, unused code used: its row for the one winner,
        None for everyone else."""
        key = code_hash(code)
        result = await self._db.execute(
            update(JoinTokenRow)
            .where(
                JoinTokenRow.code_hash == key,
                JoinTokenRow.used_at.is_(None),
                JoinTokenRow.expires_at > now,
            )
            .values(used_at=now)
        )
        if getattr(result, "rowcount", 0) != 1:
            return None
        row = await self._db.get(JoinTokenRow, key)
        return JoinCode(row.session_id, row.role) if row is not None else None

    async def purge_expired(self, cutoff: int, limit: int = 500) -> int:
        """Delete at most ``limit`` join tokens that expired before ``cutoff``. A code is
        used before it expires (:meth:`consume`), so this takes the used ones too, at
        most one join-token TTL after their use passed the cutoff."""
        doomed = (
            select(JoinTokenRow.code_hash)
            .where(JoinTokenRow.expires_at < cutoff)
            .order_by(JoinTokenRow.expires_at)
            .limit(limit)
            .scalar_subquery()
        )
        result = await self._db.execute(
            delete(JoinTokenRow).where(JoinTokenRow.code_hash.in_(doomed))
        )
        return int(getattr(result, "rowcount", 0) or 0)


class DeviceRepository:
    def __init__(self, db: DBSession) -> None:
        self._db = db

    def add(self, device: Device) -> None:
        self._db.add(DeviceRow(**{f: getattr(device, f) for f in _DEVICE_FIELDS}))

    async def get(self, device_id: str) -> Device | None:
        row = await self._db.get(DeviceRow, device_id)
        return _device(row) if row is not None else None

    async def of_session(self, session_id: str) -> list[Device]:
        stmt = select(DeviceRow).where(DeviceRow.session_id == session_id)
        rows = (await self._db.execute(stmt.order_by(DeviceRow.joined_at))).scalars()
        return [_device(row) for row in rows]

    async def revoke(self, session_id: str, device_id: str, now: int) -> bool:
        """Mark the session's device revoked; False when there is no such device."""
        result = await self._db.execute(
            update(DeviceRow)
            .where(DeviceRow.device_id == device_id, DeviceRow.session_id == session_id)
            .values(revoked_at=func.coalesce(DeviceRow.revoked_at, now))
        )
        return getattr(result, "rowcount", 0) == 1


# Rows in, values out: nothing above the store sees an ORM row (companion_ws.values).
_SESSION_FIELDS = tuple(f.name for f in fields(Session))
_DEVICE_FIELDS = tuple(f.name for f in fields(Device))


def _session(row: SessionRow) -> Session:
    return Session(**{f: getattr(row, f) for f in _SESSION_FIELDS})


def _device(row: DeviceRow) -> Device:
    return Device(**{f: getattr(row, f) for f in _DEVICE_FIELDS})


def _event(row: EventRow) -> Event:
    return Event(row.session_id, row.seq, row.epoch, row.type, row.payload.encode())
