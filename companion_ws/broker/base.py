"""The Broker interface (one screen). The broker owns ordering: ``publish`` assigns the
session's next seq, appends the event to the session's history and hands it to every
node subscribed to the session (this one included) through the handler given to
``start``. The hub never knows which broker it runs on. The values it hands out
(``Event``, ``Position``, ...) are ``companion_ws.values``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from companion_ws.values import Event, HistorySlice, Leave, Position, Seed

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

    async def swap_floor(
        self, session_id: str, expect: str | None, floor: str, kind: str, body: bytes
    ) -> Event | None:
        """The voice floor's compare-and-set (docs/protocol.md section 17): when the
        session's floor is ``expect`` (None: whatever it is), make it ``floor`` and
        publish ``body`` as :meth:`publish` does, in one step, so the floor changes in
        ``seq`` order; None (nothing published) when the floor was another. The floor is
        an opaque string to the broker, ``""`` for none."""

    async def floor(self, session_id: str) -> str:
        """The session's voice floor as the last :meth:`swap_floor` left it (``""``)."""

    async def subscribe(self, session_id: str) -> None:
        """Receive the session's events in this process."""

    async def unsubscribe(self, session_id: str) -> None:
        """Stop receiving them (this process has no client of the session left)."""

    async def position(self, session_id: str) -> Position:
        """The session's last seq and its history's epoch."""

    async def history(self, session_id: str, after_seq: int, limit: int) -> HistorySlice:
        """Up to ``limit`` events after ``after_seq``, or not available."""
