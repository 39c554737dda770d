"""docs/protocol.md section 1: the join rules, both URL forms, and the welcome frame, on the
in-process hub."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.support.hub import token
from tests.support.inproc import InProcessHub, InProcessWS, inprocess_hub

WELCOME_FIELDS = {
    "type",
    "session_id",
    "connection_id",
    "user_id",
    "created",
    "resumed",
    "seq",
    "epoch",
    "state_version",
    "clients",
    "reconnect_token",
    "timestamp",
}


def _user() -> str:
    """A fresh user per test: the module shares one database."""
    return f"u-{uuid.uuid4().hex[:8]}"


async def _presence(ws: InProcessWS) -> list[dict[str, object]]:
    reply = await ws.request({"type": "get_presence"})
    assert reply["type"] == "presence", reply
    clients: list[dict[str, object]] = reply["clients"]
    return clients


async def test_no_session_id_creates_a_session_and_the_welcome_has_every_field(
    shared_inproc: InProcessHub,
) -> None:
    user = _user()
    ws = await shared_inproc.connect(token(user), client="agent")
    w = ws.welcome
    assert set(w) >= WELCOME_FIELDS, WELCOME_FIELDS - set(w)
    assert w["created"] is True and w["resumed"] is False
    assert w["user_id"] == user
    assert isinstance(w["session_id"], str) and w["session_id"]
    assert isinstance(w["connection_id"], str) and w["connection_id"]
    assert w["seq"] == 0 and w["state_version"] == 0 and w["clients"] == 1
    assert isinstance(w["epoch"], str) and w["epoch"]
    assert isinstance(w["reconnect_token"], str)
    assert isinstance(w["timestamp"], int)
    assert "requested_session_id" not in w and "reason" not in w
    joined = await ws.recv_type("client_joined")
    assert joined["seq"] == 1
    assert joined["connection_id"] == w["connection_id"]
    assert joined["user_id"] == user and joined["client"] == "agent"
    await ws.close()


@pytest.mark.parametrize("path_session", [False, True], ids=["query", "path"])
async def test_the_owner_joins_a_live_session_by_either_url_form(
    shared_inproc: InProcessHub, path_session: bool
) -> None:
    user = _user()
    first = await shared_inproc.connect(token(user))
    sid = first.welcome["session_id"]
    await first.recv_type("client_joined")
    await first.request({"type": "update_session_state", "key": "ui.step", "value": "quote"})
    second = await shared_inproc.connect(token(user), session_id=sid, path_session=path_session)
    w = second.welcome
    assert w["session_id"] == sid and w["created"] is False
    assert w["user_id"] == user and w["connection_id"] != first.welcome["connection_id"]
    assert w["clients"] == 2 and w["state_version"] == 1
    assert w["epoch"] == first.welcome["epoch"]
    assert w["seq"] == 2  # first's client_joined, the state update
    assert "requested_session_id" not in w and "reason" not in w
    joined = await first.recv_type("client_joined")
    assert joined["connection_id"] == w["connection_id"] and joined["seq"] == 3
    assert len(await _presence(second)) == 2
    await first.close()
    await second.close()


async def test_the_path_and_query_ids_must_agree(shared_inproc: InProcessHub) -> None:
    user = _user()
    ws = await shared_inproc.connect(token(user))
    sid = ws.welcome["session_id"]
    bad = await shared_inproc.connect(
        token(user), path=f"/ws/{sid}", session_id="x", expect_welcome=False
    )
    error = await bad.recv()
    assert error["type"] == "error" and error["code"] == "invalid_message", error
    assert (await bad.closed())[0] == 4400
    await ws.close()


async def test_another_users_session_is_refused_with_4403_and_nothing_joined(
    shared_inproc: InProcessHub,
) -> None:
    owner = _user()
    a = await shared_inproc.connect(token(owner))
    sid = a.welcome["session_id"]
    await a.recv_type("client_joined")
    for path_session in (False, True):
        mallory = await shared_inproc.connect(
            token(_user()),
            session_id=sid,
            path_session=path_session,
            expect_welcome=False,
        )
        error = await mallory.recv()
        assert error["type"] == "error" and error["code"] == "forbidden", error
        assert "message" in error and "timestamp" in error
        code, _ = await mallory.closed()
        assert code == 4403
    # Nothing joined: no presence event between the owner's own join and this update.
    reply = await a.request({"type": "contextual_update", "text": "after", "data": None})
    assert reply["type"] == "contextual_update" and reply["seq"] == 2
    assert [c["user_id"] for c in await _presence(a)] == [owner]
    await a.close()


async def test_an_unknown_id_gets_a_new_server_generated_session(
    shared_inproc: InProcessHub,
) -> None:
    user = _user()
    wanted = f"my-own-id-{uuid.uuid4().hex[:6]}"
    for path_session in (False, True):
        ws = await shared_inproc.connect(token(user), session_id=wanted, path_session=path_session)
        w = ws.welcome
        assert w["created"] is True
        assert w["session_id"] != wanted
        assert w["requested_session_id"] == wanted and w["reason"] == "not_found"
        assert w["user_id"] == user and w["seq"] == 0
        await ws.close()


async def test_an_ended_session_id_gets_a_new_session(shared_inproc: InProcessHub) -> None:
    user = _user()
    ws = await shared_inproc.connect(token(user))
    sid = ws.welcome["session_id"]
    await ws.send({"type": "end_session"})
    await ws.recv_type("session_ended")
    assert (await ws.closed())[0] == 4410
    again = await shared_inproc.connect(token(user), session_id=sid)
    assert again.welcome["created"] is True and again.welcome["session_id"] != sid
    assert again.welcome["requested_session_id"] == sid
    assert again.welcome["reason"] == "ended"
    await again.close()


async def test_a_strangers_ended_session_is_reported_as_not_found(
    shared_inproc: InProcessHub,
) -> None:
    ws = await shared_inproc.connect(token(_user()))
    sid = ws.welcome["session_id"]
    await ws.send({"type": "end_session"})
    assert (await ws.closed())[0] == 4410
    mallory = await shared_inproc.connect(token(_user()), session_id=sid)
    assert mallory.welcome["created"] is True and mallory.welcome["session_id"] != sid
    assert mallory.welcome["reason"] == "not_found"
    await mallory.close()


async def test_an_admin_joins_any_session(shared_inproc: InProcessHub) -> None:
    owner = _user()
    a = await shared_inproc.connect(token(owner))
    sid = a.welcome["session_id"]
    root = await shared_inproc.connect(token("root", admin=True), session_id=sid)
    assert root.welcome["session_id"] == sid and root.welcome["created"] is False
    assert root.welcome["user_id"] == "root"
    joined = await a.recv_until(lambda f: f["type"] == "client_joined" and f["user_id"] == "root")
    assert joined["connection_id"] == root.welcome["connection_id"]
    await root.send({"type": "contextual_update", "text": "hello", "data": {"from": "admin"}})
    got = await a.recv_type("contextual_update")
    assert got["data"] == {"from": "admin"}
    await a.close()
    await root.close()


async def test_concurrent_joins_of_one_session_all_land_in_it(shared_inproc: InProcessHub) -> None:
    user = _user()
    first = await shared_inproc.connect(token(user))
    sid = first.welcome["session_id"]
    others = await asyncio.gather(
        *(shared_inproc.connect(token(user), session_id=sid) for _ in range(6))
    )
    assert {ws.welcome["session_id"] for ws in others} == {sid}
    assert len(await _presence(first)) == 7
    for ws in [first, *others]:
        await ws.close()


async def test_an_expired_id_is_ended_on_connect_and_replaced(shared_db_url: str) -> None:
    """The connect path (no sweep has run yet): docs/protocol.md's `expired` reason."""
    async with inprocess_hub(shared_db_url, session_ttl=1, sweep_interval=3600) as hub:
        user = _user()
        created = await hub.http.post(
            "/sessions", headers={"Authorization": f"Bearer {token(user)}"}
        )
        assert created.status_code == 201, created.text
        sid = created.json()["session_id"]
        expires_at = created.json()["expires_at"]
        await asyncio.sleep(1.3)
        ws = await hub.connect(token(user), session_id=sid)
        w = ws.welcome
        assert w["created"] is True and w["session_id"] != sid
        assert w["requested_session_id"] == sid and w["reason"] == "expired"
        assert expires_at <= w["timestamp"]
        await ws.close()
