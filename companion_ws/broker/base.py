"""The Broker interface (one screen). The broker owns ordering: ``publish`` assigns the
session's next seq, appends the event to the session's history and hands it to every
node subscribed to the session (this one included) through the handler given to
``start``. The hub never knows which broker it runs on."""

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


EventHandler = Callable[[Event], None]
SeedLoader = Callable[[str], Awaitable[Seed]]


class Broker(Protocol):
    async def start(self, handler: EventHandler, seed: SeedLoader) -> None: ...
    async def close(self) -> None: ...
    async def ping(self) -> bool: ...
    async def publish(self, session_id: str, kind: str, body: bytes) -> Event: ...
    async def subscribe(self, session_id: str) -> None: ...
    async def unsubscribe(self, session_id: str) -> None: ...
    async def position(self, session_id: str) -> Position: ...
    async def history(self, session_id: str, after_seq: int, limit: int) -> HistorySlice: ...
    async def presence_add(
        self, session_id: str, connection_id: str, info: dict[str, Any]
    ) -> None: ...
    async def presence_remove(self, session_id: str, connection_id: str) -> None: ...
    async def presence(self, session_id: str) -> list[dict[str, Any]]: ...
