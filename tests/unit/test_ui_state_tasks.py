"""The pure task logic (docs/protocol.md section 13): start, complete, abandon, as merge
patches of the whole ``tasks`` list."""

from __future__ import annotations

from typing import Any

from ui_state import merge_patch
from ui_state.tasks import (
    abandon_tasks,
    active_task,
    complete_task,
    start_task,
    tasks_of,
    tool_task_change,
)


def _apply(state: dict[str, Any], patch: dict[str, Any] | None) -> dict[str, Any]:
    assert patch is not None
    result: dict[str, Any] = merge_patch(state, patch)
    return result


def test_a_start_appends_an_active_task_with_its_id_and_time() -> None:
    state = _apply({"quotes": []}, start_task({}, "shipment", task_id="t1", now=100))
    assert state["tasks"] == [
        {
            "task_id": "t1",
            "name": "shipment",
            "status": "active",
            "started_at": 100,
            "ended_at": None,
        }
    ]
    assert state["quotes"] == []  # the patch touches only the tasks


def test_no_second_task_of_a_name_while_one_is_active() -> None:
    state = _apply({}, start_task({}, "shipment", task_id="t1", now=100))
    assert start_task(state, "shipment", task_id="t2", now=200) is None
    other = _apply(state, start_task(state, "refund", task_id="t3", now=200))
    assert [t["name"] for t in other["tasks"]] == ["shipment", "refund"]


def test_complete_ends_the_active_task_and_a_new_one_may_start_after() -> None:
    state = _apply({}, start_task({}, "shipment", task_id="t1", now=100))
    done = _apply(state, complete_task(state, "shipment", now=150))
    assert done["tasks"][0] == {
        "task_id": "t1",
        "name": "shipment",
        "status": "completed",
        "started_at": 100,
        "ended_at": 150,
    }
    assert active_task(done) is None
    assert complete_task(done, "shipment", now=160) is None  # nothing active: no change
    again = _apply(done, start_task(done, "shipment", task_id="t2", now=170))
    assert [(t["task_id"], t["status"]) for t in again["tasks"]] == [
        ("t1", "completed"),
        ("t2", "active"),
    ]


def test_abandon_ends_every_active_task_and_leaves_the_others() -> None:
    state = _apply({}, start_task({}, "shipment", task_id="t1", now=100))
    state = _apply(state, complete_task(state, "shipment", now=110))
    state = _apply(state, start_task(state, "shipment", task_id="t2", now=120))
    state = _apply(state, start_task(state, "refund", task_id="t3", now=130))
    gone = _apply(state, abandon_tasks(state, now=200))
    assert [(t["task_id"], t["status"], t["ended_at"]) for t in gone["tasks"]] == [
        ("t1", "completed", 110),
        ("t2", "abandoned", 200),
        ("t3", "abandoned", 200),
    ]
    assert abandon_tasks(gone, now=300) is None
    assert abandon_tasks({}, now=300) is None


def test_a_tasks_value_written_by_a_client_is_never_trusted_as_a_list() -> None:
    assert tasks_of({"tasks": "nope"}) == []
    state = {"tasks": "nope"}
    assert (
        _apply(state, start_task(state, "shipment", task_id="t1", now=1))["tasks"][0]["task_id"]
        == "t1"
    )
    junk: dict[str, Any] = {"tasks": [7, {"status": "active"}, None]}
    # Entries that are not tasks are kept as they are; one without a name is not "shipment".
    assert active_task(junk, "shipment") is None
    patch = abandon_tasks(junk, now=5)
    assert patch == {"tasks": [7, {"status": "abandoned", "ended_at": 5}, None]}


def test_a_tool_may_start_and_complete_and_the_input_is_never_modified() -> None:
    state: dict[str, Any] = {}
    starts = tool_task_change(state, starts="shipment", completes=None, task_id="t1", now=1)
    state = _apply(state, starts)
    frozen = repr(state)
    completes = tool_task_change(state, starts=None, completes="shipment", task_id="x", now=2)
    assert _apply(state, completes)["tasks"][0]["status"] == "completed"
    assert repr(state) == frozen
    both = tool_task_change({}, starts="quick", completes="quick", task_id="t9", now=3)
    assert both is not None and both["tasks"][0]["status"] == "completed"
    assert tool_task_change(state, starts=None, completes=None, task_id="x", now=4) is None
