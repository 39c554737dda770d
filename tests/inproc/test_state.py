"""Session state over the socket (docs/protocol.md sections 2-4): key/value and merge-patch
updates, optimistic concurrency, the size limit, and "committed before broadcast", on
the in-process hub (durability across restarts: tests/integration/test_state.py)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.frames import bearer, get_state, new_user
from tests.support.hub import token
from tests.support.inproc import InProcessHub, InProcessWS, inprocess_hub


async def _pair(hub: InProcessHub) -> tuple[str, InProcessWS, InProcessWS]:
    user = new_user()
    a = await hub.connect(token(user))
    sid = a.welcome["session_id"]
    b = await hub.connect(token(user), session_id=sid)
    return sid, a, b


async def test_a_dotted_key_update_is_persisted_then_broadcast_to_all(
    shared_inproc: InProcessHub,
) -> None:
    sid, a, b = await _pair(shared_inproc)
    await a.send(
        {
            "type": "update_session_state",
            "key": "ui.current_step",
            "value": "quote",
            "requestId": "k1",
        }
    )
    for ws in (a, b):
        update = await ws.recv_type("session_state_updated")
        assert update["patch"] == {"ui": {"current_step": "quote"}}
        assert update["version"] == 1 and update["requestId"] == "k1"
        assert update["sender"] == a.welcome["connection_id"]
        assert update["session_id"] == sid and isinstance(update["seq"], int)
    await a.request({"type": "update_session_state", "key": "ui.scroll", "value": 3})
    snapshot = await get_state(b)
    assert snapshot["state"] == {"ui": {"current_step": "quote", "scroll": 3}}
    assert snapshot["version"] == 2
    assert snapshot["seq"] >= 4  # two joins, two updates
    await a.request({"type": "update_session_state", "key": "ui.scroll", "value": None})
    assert (await get_state(a))["state"] == {"ui": {"current_step": "quote"}}
    await a.close()
    await b.close()


async def test_a_merge_patch_merges_nested_objects_and_null_deletes(
    shared_inproc: InProcessHub,
) -> None:
    sid, a, b = await _pair(shared_inproc)
    first = {"shipping_details": {"from": "90210", "to": "10001", "weight_lbs": 5}, "x": [1]}
    reply = await a.request({"type": "update_session_state", "patch": first})
    assert reply["type"] == "session_state_updated" and reply["version"] == 1
    second = {"shipping_details": {"weight_lbs": 7, "to": None}, "x": None, "y": {"z": True}}
    await a.request({"type": "update_session_state", "patch": second})
    got = await b.recv_until(lambda f: f["type"] == "session_state_updated" and f["version"] == 2)
    assert got["patch"] == second  # the patch as sent, nulls included
    snapshot = await get_state(b)
    assert snapshot["state"] == {
        "shipping_details": {"from": "90210", "weight_lbs": 7},
        "y": {"z": True},
    }
    assert snapshot["version"] == 2
    rest = await shared_inproc.http.get(
        f"/sessions/{sid}/state", headers=bearer(a.welcome["user_id"])
    )
    assert rest.json() == {"state": snapshot["state"], "version": 2}
    await a.close()
    await b.close()


async def test_expected_version_guards_the_update(shared_inproc: InProcessHub) -> None:
    sid, a, b = await _pair(shared_inproc)
    watcher = await shared_inproc.connect(token(a.welcome["user_id"]), session_id=sid)
    ok = await a.request({"type": "update_session_state", "patch": {"n": 1}, "expected_version": 0})
    assert ok["type"] == "session_state_updated" and ok["version"] == 1
    stale = await b.request(
        {"type": "update_session_state", "key": "n", "value": 2, "expected_version": 0}
    )
    assert stale["type"] == "error" and stale["code"] == "version_conflict", stale
    assert stale["version"] == 1 and stale["message"]
    assert stale["session_id"] == sid
    snapshot = await get_state(b)
    assert snapshot["state"] == {"n": 1} and snapshot["version"] == 1
    retry = await b.request(
        {"type": "update_session_state", "key": "n", "value": 2, "expected_version": 1}
    )
    assert retry["type"] == "session_state_updated" and retry["version"] == 2
    # The refused update was never broadcast: consecutive seqs carry v1 then v2.
    first = await watcher.recv_type("session_state_updated")
    second = await watcher.recv_type("session_state_updated")
    assert (first["version"], second["version"]) == (1, 2)
    assert second["seq"] == first["seq"] + 1
    for ws in (a, b, watcher):
        await ws.close()


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "update_session_state"},
        {"type": "update_session_state", "key": "a"},
        {"type": "update_session_state", "key": "a", "value": 1, "patch": {"a": 1}},
        {"type": "update_session_state", "key": "a..b", "value": 1},
        {"type": "update_session_state", "patch": [1]},
        {"type": "update_session_state", "patch": {"a": 1}, "expected_version": -1},
    ],
    ids=["nothing", "key-without-value", "key-and-patch", "empty-name", "array", "negative"],
)
async def test_a_malformed_update_is_invalid_and_changes_nothing(
    shared_inproc: InProcessHub, frame: dict[str, Any]
) -> None:
    user = new_user()
    ws = await shared_inproc.connect(token(user))
    reply = await ws.request(frame)
    assert reply["type"] == "error" and reply["code"] == "invalid_message", reply
    snapshot = await get_state(ws)
    assert snapshot["state"] == {} and snapshot["version"] == 0
    await ws.close()


async def test_get_session_state_answers_only_the_asker(shared_inproc: InProcessHub) -> None:
    sid, a, b = await _pair(shared_inproc)
    await a.request({"type": "update_session_state", "patch": {"k": "v"}})
    snapshot = await get_state(a)
    assert snapshot == {
        "type": "session_state",
        "session_id": sid,
        "timestamp": snapshot["timestamp"],
        "state": {"k": "v"},
        "version": 1,
        "seq": snapshot["seq"],
        "requestId": snapshot["requestId"],
    }
    # b was not sent a's reply: the next frame after the update it sees is its own pong.
    await b.recv_type("session_state_updated")
    pong = await b.request({"type": "ping"})
    assert pong["type"] == "pong"
    await a.close()
    await b.close()


async def test_an_update_over_the_size_limit_is_refused(shared_db_url: str) -> None:
    async with inprocess_hub(shared_db_url, max_state_bytes=200) as hub:
        user = new_user()
        ws = await hub.connect(token(user))
        ok = await ws.request({"type": "update_session_state", "key": "note", "value": "x" * 100})
        assert ok["type"] == "session_state_updated"
        big = await ws.request({"type": "update_session_state", "key": "more", "value": "y" * 150})
        assert big["type"] == "error" and big["code"] == "state_too_large", big
        assert big["limit"] == 200 and big["size"] > 200
        snapshot = await get_state(ws)
        assert snapshot["state"] == {"note": "x" * 100} and snapshot["version"] == 1
        # Shrinking is always allowed.
        shrink = await ws.request({"type": "update_session_state", "key": "note", "value": None})
        assert shrink["type"] == "session_state_updated" and shrink["version"] == 2
        await ws.close()


async def test_a_broadcast_update_is_already_committed(shared_inproc: InProcessHub) -> None:
    """Whoever is told of version N and reads the state at once sees N (or later)."""
    sid, a, b = await _pair(shared_inproc)
    user = a.welcome["user_id"]
    for n in range(1, 21):
        await a.request({"type": "update_session_state", "key": "n", "value": n})
        update = await b.recv_type("session_state_updated")
        assert update["version"] == n
        read = (await shared_inproc.http.get(f"/sessions/{sid}/state", headers=bearer(user))).json()
        assert read["version"] >= n and read["state"]["n"] >= n
    await a.close()
    await b.close()
