"""The ElevenLabs conversation -> section 13 frames mapping, without a server; and
against the shared fixtures (``tests/fixtures/voice``), the same files
``tests/js/voice-frames.test.mjs`` runs against the page's ``static/voice-frames.js``."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest

from companion_ws.integrations.voice_frames import ConversationFrames

FIXTURES = sorted((Path(__file__).parent.parent / "fixtures" / "voice").glob("*.json"))
CALLS = {
    "ready",
    "interrupted",
    "tool_call",
    "ended",
    "mode",
    "user_partial",
    "user_said",
    "agent_part",
    "agent_said",
    "corrected",
}


def _frames(**options: bool) -> ConversationFrames:
    counter = itertools.count(1)
    return ConversationFrames(new_id=lambda prefix: f"{prefix}{next(counter)}", **options)


def _states(frames: list[dict[str, object]]) -> list[object]:
    return [f["state"] for f in frames if f["type"] == "agent_state"]


def test_a_turn_goes_listening_thinking_speaking() -> None:
    c = _frames()
    assert _states(c.ready()) == ["listening"]
    partial = c.user_partial("Ship")
    assert partial == [
        {
            "type": "transcript",
            "role": "user",
            "message_id": "user1",
            "text": "Ship",
            "final": False,
        }
    ]
    said = c.user_said("Ship a box")
    assert said[0]["message_id"] == "user1" and said[0]["final"] is True
    assert _states(said) == ["thinking"]
    answer = c.agent_said("Sure")
    assert _states(answer) == ["speaking"] and answer[-1]["role"] == "agent"
    assert _states(c.agent_said("More")) == []  # only changes are sent
    assert _states(c.interrupted()) == ["listening"]
    assert _states(c.tool_call()) == ["thinking"]
    assert _states(c.ended()) == ["idle"]


def test_a_correction_replaces_the_interrupted_message() -> None:
    c = _frames()
    first = c.agent_said("Hello there")[-1]["message_id"]
    c.agent_said("The rates are twelve dollars")
    fixed = c.corrected("Hello there", "Hello")
    assert fixed == [
        {"type": "transcript", "role": "agent", "message_id": first, "text": "Hello", "final": True}
    ]
    # An original it cannot find corrects the latest message.
    latest = c.agent_said("Bye now")[-1]["message_id"]
    assert c.corrected("something else", "Bye")[0]["message_id"] == latest


def test_streamed_parts_build_one_message_that_the_response_finishes() -> None:
    c = _frames()
    assert c.agent_part("", "start") == []
    delta = c.agent_part("Hel", "delta")
    assert delta[-1]["text"] == "Hel" and delta[-1]["final"] is False
    assert c.agent_part("lo", "delta")[-1]["text"] == "Hello"
    stop = c.agent_part("", "stop")[-1]
    done = c.agent_said("Hello")[-1]
    assert stop["final"] and done["message_id"] == stop["message_id"] == delta[-1]["message_id"]


def test_without_transcripts_only_the_state_is_sent() -> None:
    c = _frames(transcripts=False)
    assert c.user_said("secret") == [{"type": "agent_state", "state": "thinking"}]
    assert c.corrected("a", "b") == []


def test_there_is_a_voice_fixture_for_every_call() -> None:
    assert len(FIXTURES) >= 6
    called = {step["call"] for path in FIXTURES for step in json.loads(path.read_text())["steps"]}
    assert called == CALLS


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_fixture(path: Path) -> None:
    fixture: dict[str, Any] = json.loads(path.read_text())
    c = _frames(transcripts=fixture.get("transcripts", True))
    for i, step in enumerate(fixture["steps"]):
        assert step["call"] in CALLS
        got = getattr(c, step["call"])(*step.get("args", []))
        assert got == step["frames"], f"step {i}: {step['event']}"
    assert c.state == fixture["state"]
