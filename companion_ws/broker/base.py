"""The Broker interface (one screen). The broker owns ordering: ``publish`` assigns the
session's next seq, appends the event to the session's history and hands it to every
node subscribed to the session (this one included) through the handler given to
``start``. The hub never knows which broker it runs on, and the broker never builds an
application frame: what it learns on its own (a dead process's connections left) it
hands to the node as a fact, and the node announces it."""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol


def new_epoch() -> str:
    """A fresh name for a session's history (its seq numbering)."""
    return secrets.token_hex(4)


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
    async def add(self, session_id: str, connection_id: str, info: dict[str, Any]) -> None:
        """Announce a local connection of the session (renewed while this process lives)."""

    async def remove(self, session_id: str, connection_id: str) -> None:
        """Withdraw a local connection; removing one that is not there is fine."""

    async def members(self, session_id: str) -> list[dict[str, Any]]:
        """The ``info`` of every live connection to the session, from every process."""


class Broker(Protocol):
    @property
    def presence(self) -> Presence:
        """Who is connected to each session, across processes."""

    async def start(self, handler: EventHandler, seed: SeedLoader, on_leave: LeaveHandler) -> None:
        """Begin delivering events to ``handler``; ``seed`` starts missing streams."""

    async def close(self) -> None:
        """Stop delivering and withdraw this process's presence."""

    async def ping(self) -> bool:
        """Whether the broker can publish and deliver right now."""

    async def publish(self, session_id: str, kind: str, body: bytes) -> Event:
        """Give ``body`` (an encoded frame, no seq) the session's next seq and fan it out."""

    async def subscribe(self, session_id: str) -> None:
        """Deliver the session's events to this process (its first local client joined)."""

    async def unsubscribe(self, session_id: str) -> None:
        """Stop delivering the session's events here (its last local client left)."""

    async def position(self, session_id: str) -> Position:
        """The session's last seq and the epoch it counts in."""

    async def history(self, session_id: str, after_seq: int, limit: int) -> HistorySlice:
        """Up to ``limit`` kept events after ``after_seq``, or unavailable: resync."""
