"""The conversation fold against the shared fixtures (``tests/fixtures/conversation``),
the same files ``tests/js/conversation.test.mjs`` runs against the page's
``static/conversation.js``: transcript events in seq order, messages out, and the marks
where the voice moved (``voice_moves``, none unless a fixture names them)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from ui_state.conversation import messages_of, voice_moves_of

FIXTURES = sorted((Path(__file__).parent.parent / "fixtures" / "conversation").glob("*.json"))


def _load(path: Path) -> dict[str, Any]:
    fixture: dict[str, Any] = json.loads(path.read_text())
    return fixture


def test_there_is_a_fixture_for_every_rule() -> None:
    names = {path.stem for path in FIXTURES}
    assert {
        "partials_then_final",
        "correction_after_interruption",
        "message_id_seen_again",
        "malformed",
        "other_frames",
        "voice_moved",
    } <= names


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_fixture(path: Path) -> None:
    fixture = _load(path)
    assert messages_of(fixture["events"]) == fixture["messages"]
    assert voice_moves_of(fixture["events"]) == fixture.get("voice_moves", [])
