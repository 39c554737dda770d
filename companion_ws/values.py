"""The values every layer shares, at the bottom: a session's events and positions in
its stream (what the broker orders, the store keeps and the doors deliver), and what a
session, a joined device and a join code are once read. Plain frozen dataclasses: the
store turns its rows into these, so nothing above it sees an ORM row, and the store
never imports the broker for a type."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Device",
    "Event",
    "HistorySlice",
    "JoinCode",
    "Leave",
    "Position",
    "Seed",
    "Session",
    "SessionHead",
    "new_epoch",
]


@dataclass(frozen=True, slots=True)
class Event:
    session_id: str
    seq: int
    epoch: str
    kind: str  # the frame's type
    payload: bytes  # the encoded frame, seq included: sent as is to every client


@dataclass(frozen=True, slots=True)
class Position:
    seq: int
    epoch: str


@dataclass(frozen=True, slots=True)
class HistorySlice:
    """Events after a seq. ``available`` is False when that seq is outside the kept
    history (too old, or ahead of the session): the caller must resync."""

    events: Sequence[Event]
    position: Position
    available: bool


@dataclass(frozen=True, slots=True)
class Seed:
    """Where a session's stream starts in a fresh broker: the last persisted seq, the
    epoch, and the most recent persisted events to serve resumes from."""

    seq: int
    epoch: str
    recent: Sequence[Event] = ()


@dataclass(frozen=True, slots=True)
class Leave:
    """A connection of another (dead) process left the session: its presence expired.
    With ``mine``, a connection of this process that another process reaped (and
    announced gone) while this one stalled: it must be closed."""

    session_id: str
    info: dict[str, Any]
    mine: bool = False


def new_epoch() -> str:
    """A fresh name for a session's history (its seq numbering)."""
    return secrets.token_hex(4)


@dataclass(frozen=True, slots=True)
class SessionHead:
    """What a connect needs of a session: everything but its state document."""

    id: str
    owner_id: str
    expires_at: int
    ended_at: int | None
    end_reason: str | None
    state_version: int
    restored_from: str | None


@dataclass(frozen=True, slots=True)
class Session:
    """A session as stored. Times are integer milliseconds since the epoch."""

    id: str
    owner_id: str
    created_at: int
    last_activity_at: int
    expires_at: int
    ended_at: int | None
    end_reason: str | None
    state: str  # the state document, JSON
    state_version: int
    last_seq: int
    epoch: str
    epoch_clean: bool
    restored_from: str | None  # the ended session this one carries on (section 13)

    def head(self) -> SessionHead:
        return SessionHead(
            self.id,
            self.owner_id,
            self.expires_at,
            self.ended_at,
            self.end_reason,
            self.state_version,
            self.restored_from,
        )


@dataclass(frozen=True, slots=True)
class Device:
    """A device joined to a session by join code (docs/protocol.md section 11)."""

    device_id: str
    session_id: str
    role: str
    joined_at: int
    expires_at: int
    revoked_at: int | None = None


@dataclass(frozen=True, slots=True)
class JoinCode:
    """What a consumed join code admits: a device of ``role`` into ``session_id``."""

    session_id: str
    role: str
