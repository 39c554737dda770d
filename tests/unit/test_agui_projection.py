"""The AG-UI projection of a session's frames: every event validates against the
official ``ag_ui.core`` models after a round trip through ``EventEncoder``, and each
native frame maps as companion_ws.agui.projection documents."""

from __future__ import annotations

import json
from typing import Any

import jsonpatch
from ag_ui.core import BaseEvent, Event
from ag_ui.encoder import EventEncoder
from pydantic import TypeAdapter

from companion_ws.agui.projection import Projection

_events: TypeAdapter[Any] = TypeAdapter(Event)
_encoder = EventEncoder()
SID = "s1"


def _wire(events: list[BaseEvent]) -> list[dict[str, Any]]:
    """Each event as a client reads it: one ``data:`` line, parsed and validated."""
    out = []
    for event in events:
        text = _encoder.encode(event)
        assert text.startswith("data: ") and text.endswith("\n\n") and text.count("\n") == 2
        body = json.loads(text[len("data: ") :])
        _events.validate_python(body)
        out.append(body)
    return out


def _types(events: list[BaseEvent]) -> list[str]:
    return [e["type"] for e in _wire(events)]


class Frames:
    def __init__(self) -> None:
        self.seq = 0

    def __call__(self, kind: str, **fields: Any) -> dict[str, Any]:
        self.seq += 1
        return {"type": kind, "session_id": SID, "seq": self.seq, "timestamp": 1000, **fields}


def _started(state: Any = None, seq: int = 0) -> Projection:
    p = Projection(SID, "run_1")
    p.start_at({} if state is None else state, seq)
    return p


def test_the_opening_is_run_started_and_both_snapshots() -> None:
    p, f = _started({"a": 1}), Frames()
    p.fold(f("transcript", role="user", message_id="m1", text="hi", final=True))
    opening = _wire(p.opening())
    assert [e["type"] for e in opening] == ["RUN_STARTED", "STATE_SNAPSHOT", "MESSAGES_SNAPSHOT"]
    assert opening[0]["threadId"] == SID and opening[0]["runId"] == "run_1"
    assert opening[1]["snapshot"] == {"a": 1}
    assert opening[2]["messages"] == [{"id": "m1", "role": "user", "content": "hi"}]


def test_state_changes_are_json_patch_deltas_that_rebuild_the_state() -> None:
    p, f = _started({"ui": {"step": "a"}}), Frames()
    client = {"ui": {"step": "a"}}
    for patch in ({"ui": {"step": "b"}, "q": [1]}, {"q": None}, {"ui": None}, {"ui": None}):
        events = _wire(p.project(f("session_state_updated", patch=patch, version=1)))
        for event in events:
            assert event["type"] == "STATE_DELTA"
            client = jsonpatch.apply_patch(client, event["delta"])
    assert client == p.state == {}


def test_partials_stream_as_content_and_final_ends_the_message() -> None:
    p, f = _started(), Frames()
    first = _wire(
        p.project(f("transcript", role="agent", message_id="a1", text="Hel", final=False))
    )
    assert [e["type"] for e in first] == ["TEXT_MESSAGE_START", "TEXT_MESSAGE_CONTENT"]
    assert first[0]["role"] == "assistant" and first[1]["delta"] == "Hel"
    more = _wire(
        p.project(f("transcript", role="agent", message_id="a1", text="Hello", final=True))
    )
    assert [(e["type"], e.get("delta")) for e in more] == [
        ("TEXT_MESSAGE_CONTENT", "lo"),
        ("TEXT_MESSAGE_END", None),
    ]


def test_a_rewrite_or_a_correction_is_a_messages_snapshot_with_the_new_text() -> None:
    p, f = _started(), Frames()
    p.project(f("transcript", role="user", message_id="u1", text="ship to", final=False))
    rewrite = _wire(
        p.project(f("transcript", role="user", message_id="u1", text="shop", final=False))
    )
    assert [e["type"] for e in rewrite] == ["MESSAGES_SNAPSHOT"]
    assert rewrite[0]["messages"][0]["content"] == "shop"
    p.project(f("transcript", role="user", message_id="u1", text="shop to", final=True))
    p.project(
        f("transcript", role="agent", message_id="a1", text="Sure, the rates are", final=True)
    )
    correction = _wire(
        p.project(f("transcript", role="agent", message_id="a1", text="Sure", final=True))
    )
    assert [e["type"] for e in correction] == ["MESSAGES_SNAPSHOT"]
    assert [(m["id"], m["content"]) for m in correction[0]["messages"]] == [
        ("u1", "shop to"),
        ("a1", "Sure"),
    ]
    assert p.project(f("transcript", role="agent", message_id="a1", text="Sure", final=True)) == []


def test_a_message_open_before_the_stream_is_updated_by_snapshot_not_content() -> None:
    p, f = _started(), Frames()
    p.fold(f("transcript", role="agent", message_id="a1", text="Hel", final=False))
    events = p.project(f("transcript", role="agent", message_id="a1", text="Hello", final=True))
    assert _types(events) == ["MESSAGES_SNAPSHOT"]  # no CONTENT for a message never started


def test_a_tool_run_is_start_end_then_result_and_joins_the_messages() -> None:
    p, f = _started(), Frames()
    started = _wire(p.project(f("tool_call_started", tool_call_id="t1", tool_name="quotes")))
    assert [e["type"] for e in started] == ["TOOL_CALL_START", "TOOL_CALL_END"]
    assert (
        started[0]["toolCallName"] == "quotes" and started[0]["parentMessageId"] == "tool_call:t1"
    )
    finished = _wire(
        p.project(
            f(
                "tool_call_finished",
                tool_call_id="t1",
                tool_name="quotes",
                is_error=False,
                duration_ms=7,
            )
        )
    )
    assert [e["type"] for e in finished] == ["TOOL_CALL_RESULT"]
    assert json.loads(finished[0]["content"]) == {
        "tool_name": "quotes",
        "is_error": False,
        "duration_ms": 7,
    }
    messages = _wire([p.messages_snapshot()])[0]["messages"]
    assert [m["role"] for m in messages] == ["assistant", "tool"]
    assert messages[0]["toolCalls"][0]["function"]["name"] == "quotes"
    assert messages[1]["toolCallId"] == "t1"


def test_a_tool_run_that_began_before_the_stream_gets_only_its_result() -> None:
    p, f = _started(), Frames()
    p.fold(f("tool_call_started", tool_call_id="t1", tool_name="quotes"))
    frame = f(
        "tool_call_finished", tool_call_id="t1", tool_name="quotes", is_error=True, duration_ms=1
    )
    assert _types(p.project(frame)) == ["TOOL_CALL_RESULT"]


def test_steps_start_and_finish_by_name_with_the_native_frame_attached() -> None:
    p, f = _started(), Frames()
    start = _wire(p.project(f("step", step_id="s1", name="intent", status="started")))
    done = _wire(p.project(f("step", step_id="s1", name="intent", status="failed", detail="x")))
    assert [(e["type"], e["stepName"]) for e in start + done] == [
        ("STEP_STARTED", "intent"),
        ("STEP_FINISHED", "intent"),
    ]
    assert done[0]["rawEvent"]["status"] == "failed"
    late = _types(p.project(f("step", step_id="s2", name="tools", status="done")))
    assert late == ["STEP_STARTED", "STEP_FINISHED"]


def test_other_frames_are_custom_events_named_by_their_type() -> None:
    p, f = _started(), Frames()
    events = _wire(p.project(f("agent_state", state="speaking")))
    assert events[0]["type"] == "CUSTOM" and events[0]["name"] == "agent_state"
    assert events[0]["value"]["state"] == "speaking"


def test_the_session_ending_finishes_the_run() -> None:
    p, f = _started(), Frames()
    events = _wire(p.project(f("session_ended", reason="ended")))
    assert [e["type"] for e in events] == ["CUSTOM", "RUN_FINISHED"]
    assert p.ended


def test_on_a_resume_the_changes_up_to_the_snapshot_arrive_as_one_state_snapshot() -> None:
    f = Frames()
    frames = [
        f("session_state_updated", patch={"a": 1}, version=1),  # seq 1: before the resume
        f("session_state_updated", patch={"b": 2}, version=2),  # seq 2: folded
        f("contextual_update", text="hi"),  # seq 3
        f("session_state_updated", patch={"a": None}, version=3),  # seq 4: the snapshot's
        f("session_state_updated", patch={"c": 3}, version=4),  # seq 5: live
    ]
    p = Projection(SID, "run_1")
    p.fold(frames[0])
    p.start_at({"b": 2}, 4)  # the state at seq 4
    assert _types(p.project(frames[1])) == []
    assert _types(p.project(frames[2])) == ["CUSTOM"]
    after = _wire(p.project(frames[3]))
    assert [e["type"] for e in after] == ["STATE_SNAPSHOT"] and after[0]["snapshot"] == {"b": 2}
    assert _wire(p.project(frames[4]))[0]["delta"] == [{"op": "add", "path": "/c", "value": 3}]
