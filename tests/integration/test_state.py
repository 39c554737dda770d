"""Session state over the socket (PROTOCOL.md sections 2-4): key/value and merge-patch
updates, optimistic concurrency, the size limit, durability across restarts, and
"committed before broadcast"."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.support.hub import HubFactory, HubProcess, token
from tests.support.ws import WS, connect


def _user() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


def _auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user)}"}


async def _state(ws: WS) -> dict[str, Any]:
    reply = await ws.request({"type": "get_session_state"})
    assert reply["type"] == "session_state", reply
    return reply


async def _pair(hub: HubProcess) -> tuple[str, WS, WS]:
    user = _user()
    a = await connect(hub.ws_url, token(user))
    sid = a.welcome["session_id"]
    b = await connect(hub.ws_url, token(user), session_id=sid)
    return sid, a, b


async def test_a_dotted_key_update_is_persisted_then_broadcast_to_all(
    shared_hub: HubProcess,
) -> None:
    sid, a, b = await _pair(shared_hub)
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
    snapshot = await _state(b)
    assert snapshot["state"] == {"ui": {"current_step": "quote", "scroll": 3}}
    assert snapshot["version"] == 2
    assert snapshot["seq"] >= 4  # two joins, two updates
    await a.request({"type": "update_session_state", "key": "ui.scroll", "value": None})
    assert (await _state(a))["state"] == {"ui": {"current_step": "quote"}}
    await a.close()
    await b.close()


async def test_a_merge_patch_merges_nested_objects_and_null_deletes(
    shared_hub: HubProcess,
) -> None:
    sid, a, b = await _pair(shared_hub)
    first = {"shipping_details": {"from": "90210", "to": "10001", "weight_lbs": 5}, "x": [1]}
    reply = await a.request({"type": "update_session_state", "patch": first})
    assert reply["type"] == "session_state_updated" and reply["version"] == 1
    second = {"shipping_details": {"weight_lbs": 7, "to": None}, "x": None, "y": {"z": True}}
    await a.request({"type": "update_session_state", "patch": second})
    got = await b.recv_until(lambda f: f["type"] == "session_state_updated" and f["version"] == 2)
    assert got["patch"] == second  # the patch as sent, nulls included
    snapshot = await _state(b)
    assert snapshot["state"] == {
        "shipping_details": {"from": "90210", "weight_lbs": 7},
        "y": {"z": True},
    }
    assert snapshot["version"] == 2
    async with httpx.AsyncClient(base_url=shared_hub.base_url) as http:
        rest = await http.get(f"/sessions/{sid}/state", headers=_auth(a.welcome["user_id"]))
    assert rest.json() == {"state": snapshot["state"], "version": 2}
    await a.close()
    await b.close()


async def test_expected_version_guards_the_update(shared_hub: HubProcess) -> None:
    sid, a, b = await _pair(shared_hub)
    watcher = await connect(shared_hub.ws_url, token(a.welcome["user_id"]), session_id=sid)
    ok = await a.request({"type": "update_session_state", "patch": {"n": 1}, "expected_version": 0})
    assert ok["type"] == "session_state_updated" and ok["version"] == 1
    stale = await b.request(
        {"type": "update_session_state", "key": "n", "value": 2, "expected_version": 0}
    )
    assert stale["type"] == "error" and stale["code"] == "version_conflict", stale
    assert stale["version"] == 1 and stale["message"]
    assert stale["session_id"] == sid
    snapshot = await _state(b)
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
    shared_hub: HubProcess, frame: dict[str, Any]
) -> None:
    user = _user()
    ws = await connect(shared_hub.ws_url, token(user))
    reply = await ws.request(frame)
    assert reply["type"] == "error" and reply["code"] == "invalid_message", reply
    snapshot = await _state(ws)
    assert snapshot["state"] == {} and snapshot["version"] == 0
    await ws.close()


async def test_get_session_state_answers_only_the_asker(shared_hub: HubProcess) -> None:
    sid, a, b = await _pair(shared_hub)
    await a.request({"type": "update_session_state", "patch": {"k": "v"}})
    snapshot = await _state(a)
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


async def test_an_update_over_the_size_limit_is_refused(hub_factory: HubFactory) -> None:
    hub = hub_factory(env={"COMPANION_MAX_STATE_BYTES": "200"}).start()
    user = _user()
    ws = await connect(hub.ws_url, token(user))
    ok = await ws.request({"type": "update_session_state", "key": "note", "value": "x" * 100})
    assert ok["type"] == "session_state_updated"
    big = await ws.request({"type": "update_session_state", "key": "more", "value": "y" * 150})
    assert big["type"] == "error" and big["code"] == "state_too_large", big
    assert big["limit"] == 200 and big["size"] > 200
    snapshot = await _state(ws)
    assert snapshot["state"] == {"note": "x" * 100} and snapshot["version"] == 1
    # Shrinking is always allowed.
    shrink = await ws.request({"type": "update_session_state", "key": "note", "value": None})
    assert shrink["type"] == "session_state_updated" and shrink["version"] == 2
    await ws.close()


@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
async def test_committed_state_survives_a_restart(hub_factory: HubFactory, how: str) -> None:
    hub = hub_factory().start()
    user = _user()
    ws = await connect(hub.ws_url, token(user))
    sid = ws.welcome["session_id"]
    for n in range(5):
        reply = await ws.request({"type": "update_session_state", "key": f"k{n}", "value": n})
        assert reply["type"] == "session_state_updated"
    # Told of version 5 means committed: even a crash right now keeps it.
    if how == "sigkill":
        hub.kill()
        hub.start()
    else:
        hub.restart()
    async with httpx.AsyncClient(base_url=hub.base_url) as http:
        rest = await http.get(f"/sessions/{sid}/state", headers=_auth(user))
    assert rest.status_code == 200
    assert rest.json() == {"state": {f"k{n}": n for n in range(5)}, "version": 5}
    again = await connect(hub.ws_url, token(user), session_id=sid)
    assert again.welcome["created"] is False and again.welcome["state_version"] == 5
    snapshot = await _state(again)
    assert snapshot["state"] == rest.json()["state"]
    more = await again.request({"type": "update_session_state", "key": "k5", "value": 5})
    assert more["version"] == 6
    await again.close()


async def test_a_broadcast_update_is_already_committed(shared_hub: HubProcess) -> None:
    """Whoever is told of version N and reads the state at once sees N (or later)."""
    sid, a, b = await _pair(shared_hub)
    user = a.welcome["user_id"]
    async with httpx.AsyncClient(base_url=shared_hub.base_url, headers=_auth(user)) as http:
        for n in range(1, 21):
            await a.request({"type": "update_session_state", "key": "n", "value": n})
            update = await b.recv_type("session_state_updated")
            assert update["version"] == n
            read = (await http.get(f"/sessions/{sid}/state")).json()
            assert read["version"] >= n and read["state"]["n"] >= n
    await a.close()
    await b.close()
