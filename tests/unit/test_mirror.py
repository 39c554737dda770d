"""The session mirror against the shared fixtures (``tests/fixtures/mirror``), the same
files ``tests/js/mirror.test.mjs`` runs against the page's copy of ``@companion-ws/client``
(``packages/client``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from companion_ws.client import Deliver, FetchState, Phase, RequestReplay, SessionMirror

FIXTURES = sorted((Path(__file__).parent.parent / "fixtures" / "mirror").glob("*.json"))


def run(fixture: dict[str, Any]) -> SessionMirror:
    mirror = SessionMirror(fixture.get("session_id"))
    for i, step in enumerate(fixture["steps"]):
        where = f"step {i}: {json.dumps(step)[:160]}"
        if "connect" in step:
            position = mirror.connecting()
            got = None if position is None else position._asdict()
            assert got == step["connect"], where
        elif "drop" in step:
            mirror.dropped()
        elif "fetch_failed" in step:
            mirror.fetch_failed()
        else:
            actions = [a.describe() for a in mirror.receive(step["frame"])]
            assert actions == step["actions"], where
    return mirror


def test_there_is_a_fixture_for_every_rule() -> None:
    names = {path.stem for path in FIXTURES}
    assert len(names) >= 8
    assert {"duplicates", "gap_then_replay", "resync", "state_patches"} <= names


@pytest.mark.parametrize("path", FIXTURES, ids=[p.stem for p in FIXTURES])
def test_fixture(path: Path) -> None:
    fixture = json.loads(path.read_text())
    mirror = run(fixture)
    expect = fixture["expect"]
    assert mirror.phase is Phase(expect["phase"])
    got = {
        "session_id": mirror.session_id,
        "connection_id": mirror.connection_id,
        "seq": mirror.seq,
        "epoch": mirror.epoch,
        "state": mirror.state,
        "version": mirror.version,
        "synced": mirror.synced,
        "reconnects": mirror.reconnects,
        "feed": [[f["type"], f["seq"]] for f in mirror.feed],
    }
    assert got == {k: v for k, v in expect.items() if k != "phase"}


def test_the_feed_keeps_the_newest() -> None:
    mirror = SessionMirror(feed_limit=2)
    mirror.connecting()
    mirror.receive({"type": "session_joined", "session_id": "s", "seq": 0, "epoch": "e"})
    for seq in (1, 2, 3):
        mirror.receive({"type": "contextual_update", "session_id": "s", "seq": seq, "text": "x"})
    assert [f["seq"] for f in mirror.feed] == [2, 3]


def test_actions_name_the_frames_to_send() -> None:
    mirror = SessionMirror()
    mirror.connecting()
    welcome = {"type": "session_joined", "session_id": "s", "seq": 4, "epoch": "e"}
    assert mirror.receive(welcome) == [Deliver(welcome), FetchState()]
    gap = {"type": "contextual_update", "session_id": "s", "seq": 6, "text": "x"}
    (replay,) = mirror.receive(gap)
    assert isinstance(replay, RequestReplay)
    assert replay.frame() == {"type": "resume", "last_seq": 4, "epoch": "e"}
    assert FetchState().frame() == {"type": "get_session_state"}
