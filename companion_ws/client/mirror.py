"""The session mirror: a pure copy of one session, kept from the frames the hub sends.

``SessionMirror.receive(frame)`` takes one decoded server frame and returns the
:mod:`~companion_ws.client.actions` its driver must carry out; it never touches a
socket, a clock or a task (websockets' ``protocol.py`` style). The asyncio
:class:`~companion_ws.client.CompanionClient` and the bridge use it;
packages/client/src/mirror.ts (``@companion-ws/client``, which the page imports) is its
port, rule for rule, and both run the shared fixtures in ``tests/fixtures/mirror``.

The rules (docs/protocol.md sections 2 and 4, docs/protocol.md section 11):

- A **broadcast** is a frame with an integer ``seq`` whose type is not one of
  :data:`~companion_ws.protocol.frames.DIRECT_TYPES` (so every type of
  :data:`~companion_ws.protocol.frames.BROADCAST_TYPES`, and a broadcast type newer
  than this client). With ``seq`` at or below the mirror's, it is a duplicate (a
  replay overlapping what was seen) and is dropped. With ``seq`` one past it, it is
  applied and delivered, and joins the :attr:`~SessionMirror.feed`. Further ahead is a
  gap: the frame is dropped, and the mirror asks once for a replay after its ``seq``
  (:class:`RequestReplay`, a ``resume``); until that replay ends (``resumed`` or
  ``resync_required``) every frame that does not continue the ``seq`` is dropped.
- A ``session_state_updated`` patch is merged when its ``version`` is the mirror's
  plus one; an older one is ignored (already in the state); a newer one means a
  change was missed: :class:`FetchState`, repeated until the state is as new as every
  version seen.
- ``session_joined`` is *fresh* unless the connection was opened to resume and the
  hub kept the session: a fresh welcome takes the hub's ``seq`` and ``epoch`` (and, for
  another session, forgets the old state), then fetches the state; a resumed welcome
  keeps the position and waits for the replay (and fetches the state only if it is
  not known, or a fetch for a skipped version was cut off by the drop).
- ``session_state`` replaces the state unless it is older than the mirror's;
  ``resync_required`` replaces the state, ``seq`` and ``epoch`` whatever they were
  (:class:`Resynced`).

Every frame that is not dropped is delivered (:class:`Deliver`) before any other
action it causes.
"""

from __future__ import annotations

from collections import deque
from enum import Enum
from typing import Any, NamedTuple

from companion_ws.client.actions import (
    Action,
    Deliver,
    FetchState,
    Ready,
    RequestReplay,
    Resynced,
)
from companion_ws.protocol.frames import DIRECT_TYPES
from ui_state import merge_patch

__all__ = ["FEED_LIMIT", "Phase", "Position", "SessionMirror", "sequence_of"]

Frame = dict[str, Any]

#: Broadcast frames the mirror's feed keeps (the newest).
FEED_LIMIT = 1000


class Phase(Enum):
    """Where the mirror stands with the hub."""

    CONNECTING = "connecting"  # no connection: before the first one, or between drops
    JOINING = "joining"  # a connection is open; its welcome has not come
    REPLAYING = "replaying"  # a replay was asked (on connect, or for a gap): waiting for it
    LIVE = "live"  # welcomed, every broadcast continues the seq
    CLOSED = "closed"  # stopped for good


class Position(NamedTuple):
    """A place in a session's history: resume after ``last_seq`` of ``epoch``."""

    last_seq: int
    epoch: str


def sequence_of(frame: Frame) -> int | None:
    """The frame's place in the session's order, or None for a direct frame (whose
    ``seq``, if any, is a snapshot position)."""
    seq = frame.get("seq")
    if isinstance(seq, bool) or not isinstance(seq, int):
        return None
    return None if frame.get("type") in DIRECT_TYPES else seq


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class SessionMirror:
    """One session as the hub last described it: position (``seq``, ``epoch``), state
    (``state``, ``version``), the broadcasts delivered (``feed``) and the ``phase``."""

    def __init__(self, session_id: str | None = None, *, feed_limit: int = FEED_LIMIT) -> None:
        self.phase = Phase.CONNECTING
        self.session_id = session_id
        self.connection_id: str | None = None
        self.welcome: Frame = {}
        self.seq = 0
        self.epoch: str | None = None
        self.state: dict[str, Any] = {}
        self.version = 0
        self.synced = False  # the state is known to match the hub's at `version`
        self.reconnects = 0  # welcomes after the first
        self.feed: deque[Frame] = deque(maxlen=feed_limit)
        self._welcomed = False  # ever: later connections resume
        self._asked: Position | None = None  # this connection was opened to resume
        self._ready = False  # Ready was said on this connection
        self._fetching = False  # a get_session_state is on its way
        self._newest_version = 0  # the highest version seen in any frame

    # ---------------------------------------------------------------- the connection

    def connecting(self) -> Position | None:
        """A connection is being opened: the position to resume from (for its
        ``last_seq``/``epoch`` query), or None to join afresh."""
        self.phase = Phase.JOINING
        self._ready = False
        epoch = self.epoch
        self._asked = Position(self.seq, epoch) if self._welcomed and epoch is not None else None
        return self._asked

    def decided_on(self, expected_version: int | None) -> int | None:
        """The ``expected_version`` a state change asked for now carries: the given one;
        else, while offline, the version last seen. A change queued offline is a
        decision made on that state: on reconnect a newer change wins, and this one is
        refused ``version_conflict`` (docs/protocol.md section 10, as the page does)."""
        if (
            expected_version is None
            and self.synced
            and self.phase in (Phase.CONNECTING, Phase.JOINING)
        ):
            return self.version
        return expected_version

    def dropped(self) -> None:
        """The connection is gone: requests on it will not be answered."""
        if self.phase is not Phase.CLOSED:
            self.phase = Phase.CONNECTING
        self._ready = False
        self._fetching = False

    def close(self) -> None:
        """Stopped for good."""
        self.phase = Phase.CLOSED
        self._ready = False
        self._fetching = False

    def fetch_failed(self) -> None:
        """The ``get_session_state`` asked by :class:`FetchState` was refused: the next
        reason to fetch asks again."""
        self._fetching = False

    # ---------------------------------------------------------------- frames

    def receive(self, frame: Frame) -> list[Action]:
        """Take one server frame; the actions it calls for, in order."""
        seq = sequence_of(frame)
        if seq is not None:
            return self._broadcast(frame, seq)
        follow: list[Action] = []
        match frame.get("type"):
            case "session_joined":
                follow = self._welcome(frame)
            case "session_state":
                follow = self._snapshot(frame)
            case "resync_required":
                follow = self._resync(frame)
            case "resumed":
                if self.phase is Phase.REPLAYING:
                    self.phase = Phase.LIVE
        return [Deliver(frame), *follow]

    def _broadcast(self, frame: Frame, seq: int) -> list[Action]:
        if seq <= self.seq:
            return []  # a duplicate: a replay overlapping what was seen
        if seq > self.seq + 1:
            return self._gap()
        self.seq = seq
        self.feed.append(frame)
        follow: list[Action] = []
        if frame.get("type") == "session_state_updated":
            follow = self._patch(frame)
        return [Deliver(frame, seq), *follow]

    def _gap(self) -> list[Action]:
        """Missed broadcasts: drop this one and ask, once, for the ones in between."""
        if self.phase is Phase.REPLAYING:
            return []  # asked already: the replay brings this frame in order
        self.phase = Phase.REPLAYING
        return [RequestReplay(self.seq, self.epoch)]

    def _patch(self, frame: Frame) -> list[Action]:
        version = _int(frame.get("version"))
        if version is None:
            return []
        self._newest_version = max(self._newest_version, version)
        patch = frame.get("patch")
        if version == self.version + 1 and isinstance(patch, dict):
            self.state = merge_patch(self.state, patch)
            self.version = version
            return []
        if version > self.version:
            return self._fetch()  # a change was missed: read the whole state
        return []  # older: in the state already

    def _welcome(self, frame: Frame) -> list[Action]:
        sid = frame.get("session_id")
        fresh = self._asked is None or bool(frame.get("created")) or sid != self.session_id
        if fresh and self._welcomed:
            # Another session (the old one ended or expired): start over.
            self.state, self.version, self.synced, self._newest_version = {}, 0, False, 0
            self.feed.clear()
        if isinstance(sid, str):
            self.session_id = sid
        connection = frame.get("connection_id")
        self.connection_id = connection if isinstance(connection, str) else None
        self.welcome = frame
        if fresh:
            self.seq = _int(frame.get("seq")) or 0
            epoch = frame.get("epoch")
            self.epoch = epoch if isinstance(epoch, str) else None
        if self._welcomed:
            self.reconnects += 1
        self._welcomed = True
        self.phase = Phase.LIVE if fresh else Phase.REPLAYING
        behind = fresh or not self.synced or self._newest_version > self.version
        return [*(self._fetch() if behind else []), *self._became_ready()]

    def _snapshot(self, frame: Frame) -> list[Action]:
        state, version = frame.get("state"), _int(frame.get("version"))
        if not isinstance(state, dict) or version is None:
            return []
        if version >= self.version:
            self.state, self.version = state, version
        # Otherwise the patches since that snapshot are applied already.
        self._newest_version = max(self._newest_version, version)
        self.synced = True
        self._fetching = False
        follow = self._fetch() if self._newest_version > self.version else []
        return [*follow, *self._became_ready()]

    def _resync(self, frame: Frame) -> list[Action]:
        seq, epoch = _int(frame.get("seq")), frame.get("epoch")
        if seq is not None:
            self.seq = seq
        if isinstance(epoch, str) and epoch:
            self.epoch = epoch
        state, version = frame.get("state"), _int(frame.get("version"))
        if isinstance(state, dict) and version is not None:
            self.state, self.version = state, version
            self._newest_version = max(self._newest_version, version)
            self.synced = True
        self.phase = Phase.LIVE
        return [Resynced(self.seq, self.epoch), *self._became_ready()]

    def _fetch(self) -> list[Action]:
        if self._fetching:
            return []
        self._fetching = True
        return [FetchState()]

    def _became_ready(self) -> list[Action]:
        if self._ready or not self.synced or self.phase not in (Phase.LIVE, Phase.REPLAYING):
            return []
        self._ready = True
        return [Ready()]
