"""The Broker interface (one screen). The broker owns ordering: ``publish`` assigns the
session's next seq, appends the event to the session's history and hands it to every
node subscribed to the session (this one included) through the handler given to
``start``. The hub never knows which broker it runs on."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


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
    """A connection of another (dead) process left the session: its presence expired."""

    session_id: str
    info: dict[str, Any]


EventHandler = Callable[[Event], None]
SeedLoader = Callable[[str], Awaitable[Seed]]
LeaveHandler = Callable[[Leave], None]


class Presence(Protocol):
    """Who is connected to a session, across every process."""

    async def add(self, session_id: str, connection_id: str, info: dict[str, Any]) -> None:
        """Announce a local connection of the session (renewed while this process lives)."""

    async def remove(self, session_id: str, connection_id: str) -> None:
        """Withdraw a local connection."""

    async def members(self, session_id: str) -> list[dict[str, Any]]:
        """Every live connection's info, whichever process holds it."""


class Broker(Protocol):
    @property
    def presence(self) -> Presence:
        """Who is connected to each session (the broker's own presence store)."""

    @property
    def journaled(self) -> bool:
        """Every event is committed to the event log before anyone sees it (the broker
        writes it); otherwise the node appends what it publishes and receives."""

    async def start(self, handler: EventHandler, seed: SeedLoader, on_leave: LeaveHandler) -> None:
        """Begin delivering events to ``handler``; ``seed`` starts a session's stream."""

    async def close(self) -> None:
        """Stop delivering and release connections."""

    async def ping(self) -> bool:
        """Whether the broker is usable now."""

    async def publish(self, session_id: str, kind: str, body: bytes) -> Event:
        """Assign the session's next seq to ``body``, keep it in the history, fan it out."""

    async def subscribe(self, session_id: str) -> None:
        """Receive the session's events in this process."""

    async def unsubscribe(self, session_id: str) -> None:
        """Stop receiving them (this process has no client of the session left)."""

    async def position(self, session_id: str) -> Position:
        """The session's last seq and its history's epoch."""

    async def history(self, session_id: str, after_seq: int, limit: int) -> HistorySlice:
        """Up to ``limit`` events after ``after_seq``, or not available."""


def new_epoch() -> str:
    """A fresh name for a session's history (its seq numbering)."""
    return secrets.token_hex(4)
