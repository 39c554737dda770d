"""The Python client's voice floor (``companion_ws/client/voice.py``) against the shared
fixtures (``tests/fixtures/floor``), the same files the client package's
``test/fixtures.test.mjs`` runs against ``floor.ts`` (docs/protocol.md section 17)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from companion_ws.client import NO_FLOOR, floor_after

FIXTURES = sorted((Path(__file__).parent.parent / "fixtures" / "floor").glob("*.json"))


def test_the_fixtures_are_there() -> None:
    assert len(FIXTURES) >= 3


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_the_floor_follows_the_fixture(path: Path) -> None:
    floor = dict(NO_FLOOR)
    me: str | None = None
    for i, step in enumerate(json.loads(path.read_text())["steps"]):
        frame = step["frame"]
        if frame["type"] == "session_joined":
            me = frame["connection_id"]
        floor = floor_after(floor, frame, me)
        assert floor == step["floor"], f"step {i}: {json.dumps(frame)}"
