"""What a connect reads and writes, on the driver: the session's head, a new session's
row, and where a session's stream starts in a fresh broker (its seed).

Every socket that joins reads its session's head; the first socket of a session often
creates it, and the first join of a session on a node seeds the broker from the event
log. Through units of work these were a fifth of a connect's CPU time (SQLAlchemy's
session, compilation and result rows; ``bench/RESULTS-history.md``); here they are SQL on the
driver (:mod:`companion_ws.store.held`), read into the values of
:mod:`companion_ws.values` as every other read of the store.
"""

from __future__ import annotations

from dataclasses import dataclass

from companion_ws.store.held import HeldConnection, Statement
from companion_ws.values import Event, Session, SessionHead

__all__ = ["ConnectStore", "SeedRows"]


@dataclass(frozen=True, slots=True)
class SeedRows:
    """A session's epoch as stored (None: no such session), the last seq of its events
    and its last events (oldest first)."""

    epoch: str | None
    epoch_clean: bool
    last_seq: int
    recent: list[Event]


_HEAD = Statement(
    "SELECT id, owner_id, expires_at, ended_at, end_reason, state_version, restored_from"
    " FROM sessions WHERE id = :sid"
)
_CREATE = Statement(
    "INSERT INTO sessions (id, owner_id, created_at, last_activity_at, expires_at, ended_at,"
    " end_reason, state, state_version, last_seq, epoch, epoch_clean, restored_from)"
    " VALUES (:id, :owner_id, :created_at, :last_activity_at, :expires_at, NULL, NULL,"
    " :state, :state_version, :last_seq, :epoch, :epoch_clean, :restored_from)"
)
_EPOCH = Statement("SELECT epoch, epoch_clean FROM sessions WHERE id = :sid")
_MAX_SEQ = Statement("SELECT MAX(seq) FROM events WHERE session_id = :sid")
_LATEST = Statement(
    "SELECT seq, epoch, type, payload FROM events WHERE session_id = :sid"
    " ORDER BY seq DESC LIMIT :limit"
)
_SET_EPOCH = Statement("UPDATE sessions SET epoch = :epoch, epoch_clean = :clean WHERE id = :sid")


class ConnectStore:
    def __init__(self, held: HeldConnection) -> None:
        self._held = held

    async def head(self, session_id: str) -> SessionHead | None:
        """The session as committed now, without its state."""
        async with self._held.block() as block:
            found = await block.row(_HEAD, sid=session_id)
        return SessionHead(*found) if found is not None else None

    async def create(self, row: Session) -> None:
        """Insert the new session ``row`` (every column set) and commit."""
        async with self._held.block() as block, block.transaction():
            await block.write(
                _CREATE,
                id=row.id,
                owner_id=row.owner_id,
                created_at=row.created_at,
                last_activity_at=row.last_activity_at,
                expires_at=row.expires_at,
                state=row.state,
                state_version=row.state_version,
                last_seq=row.last_seq,
                epoch=row.epoch,
                epoch_clean=row.epoch_clean,
                restored_from=row.restored_from,
            )

    async def seed(self, session_id: str, history: int) -> SeedRows:
        """The session's epoch, the last seq of its events and (for a session) its last
        ``history`` events."""
        async with self._held.block() as block:
            epoch = await block.row(_EPOCH, sid=session_id)
            last = await block.row(_MAX_SEQ, sid=session_id)
            rows = await block.rows(_LATEST, sid=session_id, limit=history) if epoch else []
        recent = [
            Event(session_id, seq, ep, kind, payload.encode())
            for seq, ep, kind, payload in reversed(rows)
        ]
        last_seq = int(last[0] or 0) if last is not None else 0
        if epoch is None:
            return SeedRows(None, False, last_seq, [])
        return SeedRows(epoch[0], bool(epoch[1]), last_seq, recent)

    async def set_epoch(self, session_id: str, epoch: str, *, clean: bool) -> None:
        async with self._held.block() as block, block.transaction():
            await block.write(_SET_EPOCH, epoch=epoch, clean=clean, sid=session_id)
