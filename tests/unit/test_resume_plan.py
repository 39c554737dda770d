"""Recovery's decision, without a server: replay or resync, and why."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from companion_ws.hub.resume_plan import (
    Replay,
    Resync,
    ResyncReason,
    epoch_matches,
    plan_resume,
)
from companion_ws.values import Position

HERE = Position(seq=40, epoch="e1")


def test_a_client_behind_in_the_same_history_gets_the_events_in_between() -> None:
    assert plan_resume(25, "e1", HERE, available=True) == Replay(after=25, until=40)


def test_a_client_that_saw_everything_gets_an_empty_replay() -> None:
    assert plan_resume(40, "e1", HERE, available=True) == Replay(after=40, until=40)


def test_another_history_is_a_resync_even_when_the_numbers_fit() -> None:
    assert plan_resume(25, "e0", HERE, available=True) == Resync(ResyncReason.EPOCH)


def test_a_client_ahead_of_the_session_is_a_resync() -> None:
    assert plan_resume(41, "e1", HERE, available=False) == Resync(ResyncReason.AHEAD)


def test_events_no_longer_kept_are_a_resync() -> None:
    assert plan_resume(3, "e1", HERE, available=False) == Resync(ResyncReason.WINDOW)


def test_without_an_epoch_the_seq_alone_names_the_position() -> None:
    assert plan_resume(0, None, HERE, available=True) == Replay(after=0, until=40)
    assert plan_resume(25, None, HERE, available=True) == Replay(after=25, until=40)
    assert plan_resume(3, None, HERE, available=False) == Resync(ResyncReason.WINDOW)
    assert plan_resume(41, None, HERE, available=False) == Resync(ResyncReason.AHEAD)
    assert epoch_matches(7, None, "anything") and not epoch_matches(1, "e0", "e1")


@given(
    last=st.integers(0, 1000),
    seq=st.integers(0, 1000),
    same_epoch=st.booleans(),
    available=st.booleans(),
)
def test_a_replay_never_starts_ahead_of_the_session_nor_crosses_histories(
    last: int, seq: int, same_epoch: bool, available: bool
) -> None:
    plan = plan_resume(last, "e1" if same_epoch else "e2", Position(seq, "e1"), available=available)
    if isinstance(plan, Replay):
        assert same_epoch and available and plan.after == last <= plan.until == seq
    else:
        assert not same_epoch or not available or last > seq
