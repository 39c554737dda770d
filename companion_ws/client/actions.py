"""What :class:`~companion_ws.client.mirror.SessionMirror` asks of its driver.

The mirror does no I/O: ``receive(frame)`` answers with a list of these, and the
driver (the asyncio :class:`~companion_ws.client.CompanionClient`, or the TypeScript
``@companion-ws/client`` in packages/client, which the page imports) carries them out, in order:

- :class:`Deliver`: hand the frame to the application (a broadcast in ``seq`` order, or
  a direct frame: a reply, a welcome, ``resumed``...);
- :class:`RequestReplay`: send ``resume`` with this position (a gap in the ``seq``);
- :class:`FetchState`: send ``get_session_state`` (the state is unknown, or a patch
  skipped a version);
- :class:`Resynced`: the hub replaced the position and the state with a snapshot;
- :class:`Ready`: the mirror is welcomed on this connection and knows the state.

Each action has a short ``name`` (the same one the page's ``mirror.js`` uses), and
:meth:`describe` writes it as the JSON list the shared fixtures record
(``tests/fixtures/mirror``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = ["Action", "Deliver", "FetchState", "Ready", "RequestReplay", "Resynced"]

Frame = dict[str, Any]


@dataclass(frozen=True)
class Deliver:
    """Hand ``frame`` to the application; ``seq`` is its place in the session's order
    (None for a direct frame)."""

    frame: Frame
    seq: int | None = None
    name: ClassVar[str] = "deliver"

    def describe(self) -> list[Any]:
        return [self.name, self.frame.get("type"), self.seq]


@dataclass(frozen=True)
class RequestReplay:
    """Ask the hub for every broadcast after ``last_seq`` of history ``epoch``."""

    last_seq: int
    epoch: str | None
    name: ClassVar[str] = "request_replay"

    def frame(self) -> Frame:
        return {"type": "resume", "last_seq": self.last_seq, "epoch": self.epoch}

    def describe(self) -> list[Any]:
        return [self.name, self.last_seq, self.epoch]


@dataclass(frozen=True)
class FetchState:
    """Read the whole state document (``get_session_state``)."""

    name: ClassVar[str] = "fetch_state"

    def frame(self) -> Frame:
        return {"type": "get_session_state"}

    def describe(self) -> list[Any]:
        return [self.name]


@dataclass(frozen=True)
class Resynced:
    """A ``resync_required`` snapshot replaced the position (``seq``, ``epoch``) and
    the state: events before it are not coming."""

    seq: int
    epoch: str | None
    name: ClassVar[str] = "resynced"

    def describe(self) -> list[Any]:
        return [self.name, self.seq, self.epoch]


@dataclass(frozen=True)
class Ready:
    """Welcomed on this connection, with a known state: requests may rely on it."""

    name: ClassVar[str] = "ready"

    def describe(self) -> list[Any]:
        return [self.name]


Action = Deliver | RequestReplay | FetchState | Resynced | Ready
