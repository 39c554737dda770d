"""The HTTP API's session routes (docs/protocol.md section 7): who may call what, the
fields, paging, state with If-Match, the JSON error shape, health and metrics, on the
in-process hub: none of them needs a wire or a process."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.support.frames import new_user
from tests.support.hub import token
from tests.support.inproc import InProcessHub

SESSION_FIELDS = {
    "session_id",
    "owner_id",
    "created_at",
    "last_activity_at",
    "expires_at",
    "connections",
    "seq",
    "state_version",
    "active",
}


def _auth(sub: str, **kwargs: Any) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(sub, **kwargs)}"}


ADMIN = _auth("root", admin=True)


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    assert body["error"]["code"] == code and isinstance(body["error"]["message"], str)
    error: dict[str, Any] = body["error"]
    return error


@pytest.fixture
def http(shared_inproc: InProcessHub) -> httpx.AsyncClient:
    return shared_inproc.http


async def test_health_and_readiness(http: httpx.AsyncClient) -> None:
    health = await http.get("/healthz")
    assert health.status_code == 200 and health.json()["status"] == "ok"
    ready = await http.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "database": True, "schema": True, "broker": True}


async def test_create_a_session(http: httpx.AsyncClient) -> None:
    user = new_user()
    created = await http.post("/sessions", headers=_auth(user))
    assert created.status_code == 201, created.text
    info = created.json()
    assert set(info) >= SESSION_FIELDS
    assert info["owner_id"] == user and info["active"] is True
    assert info["connections"] == 0 and info["seq"] == 0 and info["state_version"] == 0
    assert info["created_at"] <= info["last_activity_at"] < info["expires_at"]
    _error(await http.post("/sessions"), 401, "unauthorized")
    scoped = _auth(user, session_id=info["session_id"])  # a scoped token makes no sessions
    _error(await http.post("/sessions", headers=scoped), 403, "forbidden")


async def test_who_may_list_sessions(http: httpx.AsyncClient) -> None:
    _error(await http.get("/sessions"), 401, "unauthorized")
    bad = {"Authorization": "Bearer not-a-token"}
    _error(await http.get("/sessions", headers=bad), 401, "unauthorized")
    user = new_user()
    _error(await http.get("/sessions", headers=_auth(user, session_id="s1")), 403, "forbidden")
    own = await http.get("/sessions", headers=_auth(user))  # a user: their own (none yet)
    assert own.status_code == 200 and own.json()["sessions"] == []
    listed = await http.get("/sessions", headers=ADMIN)
    assert listed.status_code == 200 and isinstance(listed.json()["sessions"], list)


async def test_listing_pages_with_a_cursor_and_shows_the_fields(
    http: httpx.AsyncClient, shared_inproc: InProcessHub
) -> None:
    owner = new_user()
    ids = set()
    for _ in range(5):
        ids.add((await http.post("/sessions", headers=_auth(owner))).json()["session_id"])
    live = next(iter(sorted(ids)))
    ws = await shared_inproc.connect(token(owner), session_id=live)
    await ws.request({"type": "update_session_state", "key": "a", "value": 1})

    pages, cursor = [], None
    while True:
        params: dict[str, Any] = {"owner": owner, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = (await http.get("/sessions", params=params, headers=ADMIN)).json()
        pages.append(page["sessions"])
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [2, 2, 1]
    listed = [s for p in pages for s in p]
    assert {s["session_id"] for s in listed} == ids and len(listed) == 5
    for s in listed:
        assert set(s) >= SESSION_FIELDS and s["owner_id"] == owner
    row = next(s for s in listed if s["session_id"] == live)
    assert row["connections"] == 1 and row["state_version"] == 1
    assert row["seq"] >= 2  # the join and the update (written by the event log)
    # Without the owner filter the admin pages through everyone's sessions.
    first = (await http.get("/sessions", params={"limit": 1}, headers=ADMIN)).json()
    assert len(first["sessions"]) == 1 and first["next_cursor"] is not None
    for bad in ("0", "501", "x"):
        _error(
            await http.get("/sessions", params={"limit": bad}, headers=ADMIN),
            400,
            "invalid_message",
        )
    await ws.close()


async def test_one_session_for_its_owner_and_admins_only(
    http: httpx.AsyncClient, shared_inproc: InProcessHub
) -> None:
    owner = new_user()
    ws = await shared_inproc.connect(token(owner), client="agent")
    sid = ws.welcome["session_id"]
    await ws.request({"type": "update_session_state", "patch": {"quotes": [1, 2]}})
    for headers in (_auth(owner), ADMIN):
        got = await http.get(f"/sessions/{sid}", headers=headers)
        assert got.status_code == 200, got.text
        info = got.json()
        assert set(info) >= SESSION_FIELDS | {"state", "clients"}
        assert info["session_id"] == sid and info["owner_id"] == owner
        assert info["state"] == {"quotes": [1, 2]} and info["state_version"] == 1
        assert info["clients"] == [
            {
                "connection_id": ws.welcome["connection_id"],
                "user_id": owner,
                "client": "agent",
                "role": "agent",
                "device_id": ws.welcome["device_id"],
            }
        ]
        assert info["connections"] == 1
    _error(await http.get(f"/sessions/{sid}", headers=_auth(new_user())), 403, "forbidden")
    _error(await http.get(f"/sessions/{sid}"), 401, "unauthorized")
    _error(await http.get("/sessions/no-such-session", headers=ADMIN), 404, "not_found")
    _error(await http.get("/no/such/path"), 404, "not_found")
    await ws.close()


async def test_delete_ends_the_session_for_connected_clients(
    http: httpx.AsyncClient, shared_inproc: InProcessHub
) -> None:
    owner = new_user()
    a = await shared_inproc.connect(token(owner))
    sid = a.welcome["session_id"]
    b = await shared_inproc.connect(token(owner), session_id=sid)
    _error(await http.delete(f"/sessions/{sid}", headers=_auth(new_user())), 403, "forbidden")
    _error(await http.delete("/sessions/nope", headers=_auth(owner)), 404, "not_found")
    deleted = await http.delete(f"/sessions/{sid}", headers=_auth(owner))
    assert deleted.status_code == 200 and deleted.json()["ended"] is True
    assert deleted.json()["already_ended"] is False
    for ws in (a, b):
        ended = await ws.recv_type("session_ended")
        assert ended["session_id"] == sid
        assert (await ws.closed())[0] == 4410
    info = (await http.get(f"/sessions/{sid}", headers=ADMIN)).json()
    assert info["active"] is False and info["end_reason"] == "ended" and info["ended_at"]
    assert info["connections"] == 0
    again = await http.delete(f"/sessions/{sid}", headers=ADMIN)  # an admin may; idempotent
    assert again.status_code == 200 and again.json()["already_ended"] is True
    ws = await shared_inproc.connect(token(owner), session_id=sid)
    assert ws.welcome["created"] is True and ws.welcome["session_id"] != sid
    await ws.close()


async def test_state_read_and_patch_with_if_match(
    http: httpx.AsyncClient, shared_inproc: InProcessHub
) -> None:
    owner = new_user()
    ws = await shared_inproc.connect(token(owner))
    sid = ws.welcome["session_id"]
    url = f"/sessions/{sid}/state"
    empty = await http.get(url, headers=_auth(owner))
    assert empty.status_code == 200 and empty.json() == {"state": {}, "version": 0}
    assert empty.headers["etag"] == '"0"'

    patch = {"shipping_details": {"from": "90210", "to": "10001"}, "x": 1}
    patched = await http.patch(url, json=patch, headers={**_auth(owner), "If-Match": "0"})
    assert patched.status_code == 200, patched.text
    assert patched.json() == {"state": patch, "version": 1}
    assert patched.headers["etag"] == '"1"'
    update = await ws.recv_type("session_state_updated")
    assert update["patch"] == patch and update["version"] == 1 and update["sender"] == "http"
    assert isinstance(update["seq"], int)

    conflict = await http.patch(url, json={"x": 2}, headers={**_auth(owner), "If-Match": "0"})
    error = _error(conflict, 409, "version_conflict")
    assert error["version"] == 1
    weak = await http.patch(url, json={"x": None}, headers={**ADMIN, "If-Match": 'W/"1"'})
    assert weak.status_code == 200 and weak.json()["version"] == 2
    assert weak.json()["state"] == {"shipping_details": {"from": "90210", "to": "10001"}}
    unconditional = await http.patch(url, json={"y": True}, headers=_auth(owner))
    assert unconditional.json()["version"] == 3
    # The refused patch was never broadcast.
    versions = [(await ws.recv_type("session_state_updated"))["version"] for _ in range(2)]
    assert versions == [2, 3]

    _error(await http.get(url, headers=_auth(new_user())), 403, "forbidden")
    _error(await http.patch(url, json={"z": 1}, headers=_auth(new_user())), 403, "forbidden")
    _error(await http.get(url), 401, "unauthorized")
    _error(await http.get("/sessions/nope/state", headers=ADMIN), 404, "not_found")
    body = {**_auth(owner), "If-Match": "seven"}
    _error(await http.patch(url, json={"z": 1}, headers=body), 400, "invalid_message")
    # Bad JSON is the same fault, with the same code, over HTTP as on the socket.
    _error(await http.patch(url, content=b"{nope", headers=_auth(owner)), 400, "invalid_json")
    bad_utf8 = b'{"a": "\xd8"}'
    _error(await http.patch(url, content=bad_utf8, headers=_auth(owner)), 400, "invalid_json")
    _error(await http.patch(url, json=[1], headers=_auth(owner)), 400, "invalid_message")
    final = await http.get(url, headers=_auth(owner))
    assert final.json()["version"] == 3
    await ws.close()


async def test_metrics_are_prometheus_text(http: httpx.AsyncClient) -> None:
    got = await http.get("/metrics")
    assert got.status_code == 200
    assert got.headers["content-type"].startswith("text/plain")
    text = got.text
    assert "# TYPE companion_connections gauge" in text
    assert "# HELP companion_events_published_total" in text
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            assert name and float(value) >= 0, line
