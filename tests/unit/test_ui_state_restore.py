"""The state a restored session starts from (docs/protocol.md section 13, *Restore*)."""

from __future__ import annotations

from typing import Any

import pytest

from ui_state import create_session_context
from ui_state.restore import restored_state, unfinished_task


def _task(status: str, task_id: str = "t1", **extra: Any) -> dict[str, Any]:
    return {"task_id": task_id, "name": "shipment", "status": status, "ended_at": 9, **extra}


@pytest.mark.parametrize("status", ["active", "abandoned"])
def test_the_last_unfinished_task_is_active_again(status: str) -> None:
    state: dict[str, Any] = {"tasks": [_task("completed", "t0"), _task(status)], "quotes": [1]}
    restored = restored_state(state, source="old")
    assert restored["quotes"] == [1]
    assert restored["tasks"][0] == _task("completed", "t0")
    assert restored["tasks"][1] == {
        **_task("active"),
        "ended_at": None,
        "restored_from": "old",
    }
    assert state["tasks"][1]["status"] == status  # the old state is not touched


@pytest.mark.parametrize(
    "state",
    [{}, {"tasks": []}, {"tasks": [_task("completed")]}, {"tasks": "x"}, {"tasks": [1]}],
)
def test_nothing_to_carry_on(state: dict[str, Any]) -> None:
    assert unfinished_task(state) is None
    assert restored_state(state, source="old") == state


def test_the_agent_is_told_it_continues_a_task_and_what_was_done() -> None:
    state = restored_state(
        {
            "tasks": [_task("abandoned")],
            "shipping_details": {"weight_lbs": 5, "from": "90210", "to": "10001"},
        },
        source="old",
    )
    summary = create_session_context(state)
    assert summary.startswith("This session continues an unfinished shipment task")
    assert "Already done: Shipping details: a 5 lb package from 90210 to 10001." in summary
    # Before the restore, it is an ordinary resume.
    assert create_session_context({"tasks": [_task("active")]}).startswith(
        "The session has just started"
    )
