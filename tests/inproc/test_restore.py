"""Coming back to an abandoned task (docs/protocol.md section 13, *Restore*), on the
in-process hub on SQLite and PostgreSQL: a user lists their own sessions, restores an
ended one by ``POST /sessions {"restore_from"}``, and connecting to their own expired
session that had an unfinished task carries it on by itself."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.support.hub import token
from tests.support.inproc import InProcessHub, InProcessWS, inprocess_hub

SHORT = {"session_ttl": 1.0, "sweep_interval": 0.2}
QUOTES = [{"quote_id": "q1", "carrier": "UPS", "service": "Ground", "cost": 12.5, "days": 4}]


def _user() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


def _auth(user: str, **claims: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user, **claims)}"}


async def _session_with_a_task(hub: InProcessHub, user: str) -> InProcessWS:
    """A session half-way through a shipment: quotes offered, nothing chosen."""
    ws = await hub.connect(token(user))
    task = {
        "task_id": "t1",
        "name": "shipment",
        "status": "active",
        "started_at": 1,
        "ended_at": None,
    }
    patch = {"tasks": [task], "quotes": QUOTES, "shipping_details": {"from": "90210"}}
    reply = await ws.request({"type": "update_session_state", "patch": patch})
    assert reply["type"] == "session_state_updated", reply
    return ws


async def test_a_user_lists_only_their_own_sessions(shared_inproc: InProcessHub) -> None:
    http = shared_inproc.http
    alice, bob = _user(), _user()
    mine = [(await http.post("/sessions", headers=_auth(alice))).json() for _ in range(2)]
    theirs = (await http.post("/sessions", headers=_auth(bob))).json()

    listed = await http.get("/sessions", headers=_auth(alice))
    assert listed.status_code == 200, listed.text
    ids = {s["session_id"] for s in listed.json()["sessions"]}
    assert ids == {s["session_id"] for s in mine}

    # ?owner= is an admin's filter: a user asking for someone else's still gets theirs.
    sneaky = await http.get("/sessions", params={"owner": bob}, headers=_auth(alice))
    assert {s["session_id"] for s in sneaky.json()["sessions"]} == ids

    everyone = await http.get("/sessions", params={"owner": bob}, headers=_auth("root", admin=True))
    assert [s["session_id"] for s in everyone.json()["sessions"]] == [theirs["session_id"]]

    scoped = await http.get("/sessions", headers=_auth(alice, session_id=mine[0]["session_id"]))
    assert scoped.status_code == 403 and scoped.json()["error"]["code"] == "forbidden"


async def test_restore_from_an_ended_session_carries_its_state_and_task(
    shared_inproc: InProcessHub,
) -> None:
    hub, http = shared_inproc, shared_inproc.http
    user = _user()
    ws = await _session_with_a_task(hub, user)
    old = ws.welcome["session_id"]
    assert (await ws.request({"type": "end_session"}))["type"] == "session_ended"

    made = await http.post("/sessions", json={"restore_from": old}, headers=_auth(user))
    assert made.status_code == 201, made.text
    new = made.json()
    assert new["restored_from"] == old and new["session_id"] != old and new["active"]

    state = await http.get(f"/sessions/{new['session_id']}/state", headers=_auth(user))
    doc = state.json()["state"]
    assert doc["quotes"] == QUOTES and doc["shipping_details"] == {"from": "90210"}
    [task] = doc["tasks"]
    assert task["status"] == "active" and task["ended_at"] is None
    assert task["restored_from"] == old and task["task_id"] == "t1"

    listed = await http.get("/sessions", headers=_auth(user))
    by_id = {s["session_id"]: s for s in listed.json()["sessions"]}
    assert by_id[old]["active"] is False and by_id[new["session_id"]]["restored_from"] == old

    back = await hub.connect(token(user), session_id=new["session_id"])
    assert back.welcome["restored_from"] == old and back.welcome["created"] is False
    current = await back.request({"type": "get_session_state"})
    assert current["state"]["tasks"][0]["status"] == "active"
    await back.close()


async def test_restore_is_refused_for_what_is_not_ones_own_ended_session(
    shared_inproc: InProcessHub,
) -> None:
    hub, http = shared_inproc, shared_inproc.http
    alice, mallory = _user(), _user()
    ws = await _session_with_a_task(hub, alice)
    live = ws.welcome["session_id"]

    async def restore(body: Any, user: str = alice) -> httpx.Response:
        return await http.post("/sessions", json=body, headers=_auth(user))

    still_live = await restore({"restore_from": live})
    assert still_live.status_code == 409
    assert still_live.json()["error"]["code"] == "session_live"
    assert (await ws.request({"type": "end_session"}))["type"] == "session_ended"

    stranger = await restore({"restore_from": live}, mallory)
    assert stranger.status_code == 404 and stranger.json()["error"]["code"] == "not_found"
    missing = await restore({"restore_from": "no-such-session"})
    assert missing.status_code == 404
    bad_ids: list[Any] = [7, "", None, "a\x00b", "x" * 65]
    for bad in [*({"restore_from": b} for b in bad_ids), ["x"]]:
        answer = await restore(bad)
        assert answer.status_code == 400 and answer.json()["error"]["code"] == "invalid_message"
    scoped = await http.post(
        "/sessions", json={"restore_from": live}, headers=_auth(alice, session_id=live)
    )
    assert scoped.status_code == 403
    # Nothing was created by any refusal.
    listed = await http.get("/sessions", headers=_auth(alice))
    assert [s["session_id"] for s in listed.json()["sessions"]] == [live]


async def test_connecting_to_ones_expired_session_with_an_unfinished_task_restores_it(
    db_url: str,
) -> None:
    async with inprocess_hub(db_url, **SHORT) as hub:
        user = _user()
        ws = await _session_with_a_task(hub, user)
        old = ws.welcome["session_id"]
        ended = await ws.recv_type("session_ended", timeout=15)
        assert ended["reason"] == "expired"

        again = await hub.connect(token(user), session_id=old)
        w = again.welcome
        assert w["created"] is True and w["session_id"] != old
        assert w["reason"] == "expired" and w["requested_session_id"] == old
        assert w["restored_from"] == old
        state = (await again.request({"type": "get_session_state"}))["state"]
        assert state["quotes"] == QUOTES
        assert state["tasks"][-1]["status"] == "active"
        assert state["tasks"][-1]["restored_from"] == old
        await again.close()

        # A stranger naming it gets an empty session and is not told it existed.
        other = await hub.connect(token(_user()), session_id=old)
        assert other.welcome["reason"] == "not_found" and "restored_from" not in other.welcome
        await other.close()


async def test_an_expired_session_without_an_unfinished_task_is_not_restored(
    db_url: str,
) -> None:
    async with inprocess_hub(db_url, **SHORT) as hub:
        user = _user()
        ws = await hub.connect(token(user))
        old = ws.welcome["session_id"]
        done = {"task_id": "t1", "name": "shipment", "status": "completed"}
        await ws.request({"type": "update_session_state", "patch": {"tasks": [done]}})
        await ws.recv_type("session_ended", timeout=15)

        again = await hub.connect(token(user), session_id=old)
        assert again.welcome["created"] is True and "restored_from" not in again.welcome
        assert (await again.request({"type": "get_session_state"}))["state"] == {}
        await again.close()
