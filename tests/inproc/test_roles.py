"""Least privilege (docs/protocol.md sections 11, 12 and 16), on the in-process hub: every
role's rights over the socket and HTTP, devices that join by code, their revocation,
their fixed lifetime, and connections that live no longer than their token (revocation
on every process of a cluster: tests/integration/test_roles.py)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import jwt
import pytest

from tests.support.frames import new_user
from tests.support.hub import SECRET, token
from tests.support.inproc import InProcessHub, InProcessWS, inprocess_hub

READ = {"type": "get_session_state"}
WRITE = {"type": "update_session_state", "patch": {"touched": True}}
SAY = {"type": "contextual_update", "text": "hello"}
END = {"type": "end_session"}
SPEAK = {"type": "transcript", "role": "agent", "message_id": "m1", "text": "Hi", "final": True}


def _auth(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


async def _device(hub: InProcessHub, owner_token: str, sid: str, role: str | None) -> InProcessWS:
    body = {"role": role} if role else None
    issued = await hub.http.post(
        f"/sessions/{sid}/join-token", json=body, headers=_auth(owner_token)
    )
    assert issued.status_code == 201, issued.text
    assert issued.json()["role"] == (role or "companion")
    return await hub.connect(issued.json()["join_token"])


async def _allowed(ws: InProcessWS, frame: dict[str, Any]) -> None:
    reply = await ws.request(frame)
    assert reply["type"] != "error", reply


async def _refused(ws: InProcessWS, frame: dict[str, Any]) -> None:
    reply = await ws.request(frame)
    assert reply["type"] == "error" and reply["code"] == "forbidden", reply
    await _allowed(ws, {"type": "ping"})  # the connection stays open


@pytest.mark.parametrize(
    ("role", "may", "may_not"),
    [
        ("owner", [READ, WRITE, SAY, SPEAK], []),
        ("agent", [READ, WRITE, SAY, SPEAK], [END]),
        ("companion", [READ, WRITE, SAY], [END, SPEAK]),
        ("observer", [READ], [WRITE, SAY, END, SPEAK]),
        ("service", [READ, WRITE, SAY, SPEAK], [END]),
        ("admin", [READ, WRITE, SAY, SPEAK], []),
    ],
)
async def test_each_role_over_the_socket(
    shared_inproc: InProcessHub,
    role: str,
    may: list[dict[str, Any]],
    may_not: list[dict[str, Any]],
) -> None:
    owner = new_user()
    owner_token = token(owner)
    home = await shared_inproc.connect(owner_token)
    sid = home.welcome["session_id"]
    if role in ("companion", "observer"):
        ws = await _device(shared_inproc, owner_token, sid, role)
    else:
        tok = {
            "owner": owner_token,
            "agent": owner_token,
            "service": token("billing", service=True),
            "admin": token("ops", admin=True),
        }[role]
        ws = await shared_inproc.connect(
            tok, session_id=sid, client="agent" if role == "agent" else "ui"
        )
    assert ws.welcome["role"] == role and ws.welcome["device_id"]
    joined = await home.recv_until(
        lambda f: (
            f["type"] == "client_joined" and f["connection_id"] != home.welcome["connection_id"]
        )
    )
    assert joined["role"] == role and joined["device_id"] == ws.welcome["device_id"]
    for frame in may:
        await _allowed(ws, frame)
    for frame in may_not:
        await _refused(ws, frame)
    if role in ("owner", "admin"):
        await ws.send(END)
        assert (await ws.closed())[0] == 4410
    await home.close()


async def test_a_device_never_connects_as_the_agent(shared_inproc: InProcessHub) -> None:
    owner_token = token(new_user())
    home = await shared_inproc.connect(owner_token)
    issued = await shared_inproc.http.post(
        f"/sessions/{home.welcome['session_id']}/join-token", headers=_auth(owner_token)
    )
    ws = await shared_inproc.connect(
        issued.json()["join_token"], client="agent", expect_welcome=False
    )
    error = await ws.recv()
    assert error["code"] == "forbidden" and (await ws.closed())[0] == 4403
    await home.close()


async def test_over_http_a_device_token_reads_its_session_and_nothing_more(
    shared_inproc: InProcessHub,
) -> None:
    http = shared_inproc.http
    owner_token = token(new_user())
    home = await shared_inproc.connect(owner_token)
    sid = home.welcome["session_id"]
    phone = await _device(shared_inproc, owner_token, sid, None)
    device = _auth(phone.welcome["reconnect_token"])
    for path in (f"/sessions/{sid}", f"/sessions/{sid}/state", f"/sessions/{sid}/history"):
        assert (await http.get(path, headers=device)).status_code == 200, path
    refused = [
        await http.patch(f"/sessions/{sid}/state", json={"x": 1}, headers=device),
        await http.post(f"/sessions/{sid}/events", json={"text": "x"}, headers=device),
        await http.post(f"/sessions/{sid}/join-token", headers=device),
        await http.get(f"/sessions/{sid}/qr.svg", headers=device),
        await http.get(f"/sessions/{sid}/devices", headers=device),
        await http.delete(f"/sessions/{sid}/devices/{phone.welcome['device_id']}", headers=device),
        await http.delete(f"/sessions/{sid}", headers=device),
        await http.post("/sessions", headers=device),
    ]
    assert [r.status_code for r in refused] == [403] * len(refused), [r.text for r in refused]
    owner = _auth(owner_token)
    assert (await http.patch(f"/sessions/{sid}/state", json={"x": 1}, headers=owner)).is_success
    await phone.close()
    await home.close()


async def test_the_sender_of_a_backend_event_comes_from_its_credential(
    shared_inproc: InProcessHub,
) -> None:
    http = shared_inproc.http
    home = await shared_inproc.connect(token(new_user()))
    sid = home.welcome["session_id"]
    service = _auth(token("billing", service=True))
    forged = await http.post(
        f"/sessions/{sid}/events", json={"text": "x", "sender": "agent"}, headers=service
    )
    assert forged.status_code == 400 and "credential" in forged.text
    posted = await http.post(f"/sessions/{sid}/events", json={"text": "paid"}, headers=service)
    assert posted.status_code == 201
    frame = await home.recv_until(lambda f: f.get("text") == "paid")
    assert frame["sender"] == "service:billing"
    await home.close()


async def test_devices_are_listed_and_a_revoked_one_is_cut_off_and_refused(
    shared_inproc: InProcessHub,
) -> None:
    http = shared_inproc.http
    owner_token = token(new_user())
    home = await shared_inproc.connect(owner_token)
    sid = home.welcome["session_id"]
    phone = await _device(shared_inproc, owner_token, sid, None)
    tv = await _device(shared_inproc, owner_token, sid, "observer")
    listed = (await http.get(f"/sessions/{sid}/devices", headers=_auth(owner_token))).json()
    by_id = {d["device_id"]: d for d in listed["devices"]}
    assert by_id[phone.welcome["device_id"]]["role"] == "companion"
    assert by_id[tv.welcome["device_id"]]["role"] == "observer"
    assert all(d["connected"] and not d["revoked"] for d in by_id.values())

    device_id = phone.welcome["device_id"]
    started = time.monotonic()
    revoked = await http.delete(f"/sessions/{sid}/devices/{device_id}", headers=_auth(owner_token))
    assert revoked.status_code == 200
    error = await phone.recv_until(lambda f: f["type"] == "error", timeout=2)
    assert error["code"] == "forbidden"
    assert (await phone.closed(timeout=2))[0] == 4403
    assert time.monotonic() - started < 1.5
    again = await shared_inproc.connect(phone.welcome["reconnect_token"], expect_welcome=False)
    assert (await again.recv())["code"] == "unauthorized" and (await again.closed())[0] == 4401
    await _allowed(tv, READ)  # the other device is untouched
    await tv.close()
    await home.close()


async def test_a_device_token_stops_at_its_ttl_though_it_reconnected(db_url: str) -> None:
    async with inprocess_hub(db_url, device_ttl=4.0) as hub:
        owner_token = token(new_user())
        home = await hub.connect(owner_token)
        sid = home.welcome["session_id"]
        phone = await _device(hub, owner_token, sid, None)
        first = phone.welcome["reconnect_token"]
        expires = jwt.decode(first, SECRET, algorithms=["HS256"])["exp"]
        await phone.close()
        await asyncio.sleep(1)
        back = await hub.connect(first)
        assert (
            jwt.decode(back.welcome["reconnect_token"], SECRET, algorithms=["HS256"])["exp"]
            == expires
        )
        await back.close()
        await asyncio.sleep(max(0.0, expires - time.time()) + 0.5)
        late = await hub.connect(back.welcome["reconnect_token"], expect_welcome=False)
        assert (await late.recv())["code"] == "unauthorized" and (await late.closed())[0] == 4401
        await home.close()


async def test_a_connection_lives_no_longer_than_its_token_unless_refreshed(
    db_url: str,
) -> None:
    async with inprocess_hub(db_url, refresh_lead=2.0, refresh_grace=1.0) as hub:
        user = new_user()
        stale = await hub.connect(token(user, ttl=3))
        sid = stale.welcome["session_id"]
        fresh = await hub.connect(token(user, ttl=3), session_id=sid)
        for ws in (stale, fresh):
            warned = await ws.recv_until(lambda f: f["type"] == "refresh_required", timeout=5)
            assert warned["expires_at"] > time.time() * 1000
        renewed = await fresh.request({"type": "refresh", "token": token(user, ttl=600)})
        assert renewed["type"] == "refreshed" and renewed["expires_at"] > (time.time() + 500) * 1000
        stranger = await fresh.request({"type": "refresh", "token": token(new_user(), ttl=600)})
        assert stranger["code"] == "forbidden"
        expired = await stale.recv_until(lambda f: f["type"] == "error", timeout=6)
        assert expired["code"] == "token_expired" and (await stale.closed())[0] == 4401
        await asyncio.sleep(1.5)
        await _allowed(fresh, READ)  # past the first token's exp + grace: still open
        await fresh.close()


async def test_an_oidc_sid_claim_is_not_a_session_scope(shared_inproc: InProcessHub) -> None:
    keycloak = jwt.encode(
        {"sub": new_user(), "exp": int(time.time()) + 60, "sid": "a-keycloak-login-session"},
        SECRET,
        algorithm="HS256",
    )
    ws = await shared_inproc.connect(keycloak)
    assert ws.welcome["created"] is True and ws.welcome["role"] == "owner"
    await ws.close()


async def test_every_page_carries_the_security_headers(shared_inproc: InProcessHub) -> None:
    http: httpx.AsyncClient = shared_inproc.http
    for path in ("/", "/join", "/?session_id=x"):
        page = await http.get(path)
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "unsafe-inline" not in csp
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["referrer-policy"] == "no-referrer"
    asset = await http.get("/static/app.js")
    assert asset.headers["x-content-type-options"] == "nosniff"
