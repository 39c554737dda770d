"""Recovery's decision, pure: from what a client last saw and where the session's
history stands, replay the events in between or send one snapshot (``resync``).

No I/O: the driver (:mod:`companion_ws.hub.recovery`) reads the history page by page and
asks this module at each step; the unit tests ask it directly.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from companion_ws.values import Position

__all__ = ["Replay", "Resync", "ResyncReason", "epoch_matches", "plan_resume"]


class ResyncReason(StrEnum):
    EPOCH = "epoch"  # the client's numbers belong to another history
    AHEAD = "ahead"  # the client claims events the session never had
    WINDOW = "window"  # the events after the client's are no longer all kept


@dataclass(frozen=True, slots=True)
class Replay:
    """Send every event in ``(after, until]``, then ``resumed``."""

    after: int
    until: int


@dataclass(frozen=True, slots=True)
class Resync:
    reason: ResyncReason


def epoch_matches(last_seq: int, epoch: str | None, current: str) -> bool:
    """Whether ``last_seq`` counts in the current history. Numbers are never reused
    (docs/protocol.md v1.1), so without an epoch ``last_seq`` alone names a position."""
    return epoch is None or epoch == current


def plan_resume(
    last_seq: int, epoch: str | None, position: Position, *, available: bool
) -> Replay | Resync:
    """``available``: the history holds every event after ``last_seq`` (the broker's
    answer for the first page)."""
    if not epoch_matches(last_seq, epoch, position.epoch):
        return Resync(ResyncReason.EPOCH)
    if last_seq > position.seq:
        return Resync(ResyncReason.AHEAD)
    if not available:
        return Resync(ResyncReason.WINDOW)
    return Replay(last_seq, position.seq)
