"""The agent capability is the agent role, never more (docs/protocol.md section 11, v1.2), and
a reconnect token never outlives what it came from (section 12, v1.2), on the in-process
hub: the socket and the HTTP API, on SQLite and PostgreSQL. (Over gRPC, which needs a
real port: tests/integration/test_capability.py.)"""

from __future__ import annotations

import time
from typing import Any

import httpx
import jwt

from tests.support.agui import Reader
from tests.support.frames import new_user
from tests.support.hub import SECRET, token
from tests.support.inproc import BASE_URL, InProcessHub, InProcessWS, StreamingASGITransport

#: The capability's audience (companion_ws.auth.tokens.CAPABILITY_AUDIENCE), spelled out.
CAPABILITY_AUDIENCE = "companion-agent"
#: Every HTTP door of a session but the reads: (method, path under /sessions/{id}).
NOT_READS = [
    ("DELETE", ""),
    ("POST", "/join-token"),
    ("GET", "/qr.svg"),
    ("GET", "/devices"),
    ("DELETE", "/devices/d-1"),
    ("PATCH", "/state"),
    ("POST", "/events"),
    ("POST", "/elevenlabs/conversation"),
]
READS = ["", "/state", "/history", "/messages"]


def _auth(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


def _claims(tok: str) -> dict[str, Any]:
    claims: dict[str, Any] = jwt.decode(
        tok, SECRET, algorithms=["HS256"], options={"verify_aud": False}
    )
    return claims


async def _call(http: httpx.AsyncClient, method: str, url: str, tok: str) -> httpx.Response:
    body: dict[str, Any] | None = {"text": "hi"} if url.endswith("/events") else None
    if url.endswith("/state") and method == "PATCH":
        body = {"touched": True}
    return await http.request(method, url, json=body, headers=_auth(tok))


async def _agent(hub: InProcessHub, who: str, sid: str, **claims: Any) -> tuple[InProcessWS, str]:
    """An agent's connection (``client=agent``) and the capability its welcome carries."""
    ws = await hub.connect(token(who, **claims), session_id=sid, client="agent")
    assert ws.welcome["role"] == "agent"
    cap = ws.welcome["agent_capability"]
    assert isinstance(cap, str)
    return ws, cap


async def test_over_http_the_capability_reads_its_session_and_nothing_more(
    shared_inproc: InProcessHub,
) -> None:
    http = shared_inproc.http
    owner = new_user()
    home = await shared_inproc.connect(token(owner))
    sid = home.welcome["session_id"]
    agent, cap = await _agent(shared_inproc, owner, sid)
    for path in READS:
        reply = await http.get(f"/sessions/{sid}{path}", headers=_auth(cap))
        assert reply.status_code == 200, (path, reply.text)
    for method, path in NOT_READS:
        reply = await _call(http, method, f"/sessions/{sid}{path}", cap)
        assert reply.status_code == 403, (method, path, reply.text)
    assert (await http.get("/sessions", headers=_auth(cap))).status_code == 403
    assert (await http.post("/sessions", headers=_auth(cap))).status_code == 403
    # Nothing happened: the session is live and unchanged.
    info = await http.get(f"/sessions/{sid}", headers=_auth(token(owner)))
    assert info.json()["active"] is True and info.json()["state"] == {}
    assert _claims(cap)["aud"] == CAPABILITY_AUDIENCE  # no user token's audience
    await agent.close()
    await home.close()


async def test_a_services_capability_names_the_service_and_gives_it_no_more(
    shared_inproc: InProcessHub,
) -> None:
    http = shared_inproc.http
    owner = new_user()
    home = await shared_inproc.connect(token(owner))
    sid = home.welcome["session_id"]
    agent, cap = await _agent(shared_inproc, "svc-1", sid, service=True)
    claims = _claims(cap)
    assert claims["sub"] == "svc-1" and claims["companion_sid"] == sid
    assert "role" not in claims  # neither the owner nor a service: the agent role
    for method, path in (("DELETE", ""), ("POST", "/join-token"), ("GET", "/devices")):
        reply = await _call(http, method, f"/sessions/{sid}{path}", cap)
        assert reply.status_code == 403, (method, path, reply.text)
    assert (await http.get(f"/sessions/{sid}", headers=_auth(cap))).status_code == 200
    await agent.close()
    await home.close()


async def test_on_the_socket_the_capability_is_the_agent_and_never_grows(
    shared_inproc: InProcessHub,
) -> None:
    owner = new_user()
    home = await shared_inproc.connect(token(owner))
    sid = home.welcome["session_id"]
    agent, cap = await _agent(shared_inproc, owner, sid)
    expires = _claims(cap)["exp"]
    for client in (None, "agent"):
        ws = await shared_inproc.connect(cap, client=client)
        assert ws.welcome["session_id"] == sid and ws.welcome["role"] == "agent"
        assert ws.welcome["user_id"] == owner
        # What it reconnects with, and the capability it hands on, are no later.
        assert _claims(ws.welcome["reconnect_token"])["exp"] <= expires
        assert _claims(ws.welcome["reconnect_token"])["aud"] == CAPABILITY_AUDIENCE
        assert _claims(ws.welcome["agent_capability"])["exp"] <= expires
        ended = await ws.request({"type": "end_session"})
        assert ended["type"] == "error" and ended["code"] == "forbidden", ended
        # A user-token path: the capability renews no connection.
        renewed = await ws.request({"type": "refresh", "token": cap})
        assert renewed["type"] == "error" and renewed["code"] == "forbidden", renewed
        await ws.close()
    await agent.close()
    await home.close()


async def test_the_capability_is_refused_once_its_session_has_ended(
    shared_inproc: InProcessHub,
) -> None:
    http = shared_inproc.http
    owner = new_user()
    home = await shared_inproc.connect(token(owner))
    sid = home.welcome["session_id"]
    agent, cap = await _agent(shared_inproc, owner, sid)
    assert (await http.get(f"/sessions/{sid}", headers=_auth(cap))).status_code == 200
    ended = await http.delete(f"/sessions/{sid}", headers=_auth(token(owner)))
    assert ended.status_code == 200
    for path in READS:
        reply = await http.get(f"/sessions/{sid}{path}", headers=_auth(cap))
        assert reply.status_code == 410, (path, reply.text)
    # The owner still reads the ended session.
    assert (await http.get(f"/sessions/{sid}", headers=_auth(token(owner)))).status_code == 200
    late = await shared_inproc.connect(cap, expect_welcome=False)
    refused = await late.recv()
    assert refused["type"] == "error" and refused["code"] == "session_ended", refused
    await late.closed()
    await agent.close()
    await home.close()


async def test_a_short_login_never_becomes_a_long_owner_pass(
    shared_inproc: InProcessHub,
) -> None:
    """The audit's N3: a 3 s access token, a 24 h reconnect TTL."""
    http = shared_inproc.http
    owner = new_user()
    login = token(owner, ttl=3)
    home = await shared_inproc.connect(login)
    sid = home.welcome["session_id"]
    first = home.welcome["reconnect_token"]
    assert _claims(first)["exp"] <= _claims(login)["exp"]
    back = await shared_inproc.connect(first, session_id=sid)
    assert back.welcome["role"] == "owner"
    second = back.welcome["reconnect_token"]
    assert _claims(second)["exp"] <= _claims(first)["exp"]  # reconnecting never extends it
    # A reconnect token renews no connection; the user's own fresh token does.
    for ws in (home, back):
        refused = await ws.request({"type": "refresh", "token": first})
        assert refused["type"] == "error" and refused["code"] == "forbidden", refused
    renewed = await back.request({"type": "refresh", "token": token(owner, ttl=600)})
    assert renewed["type"] == "refreshed" and renewed["expires_at"] > (time.time() + 500) * 1000
    # Over HTTP it reads its session and nothing more.
    for path in READS:
        reply = await http.get(f"/sessions/{sid}{path}", headers=_auth(second))
        assert reply.status_code == 200, (path, reply.text)
    for method, path in NOT_READS:
        reply = await _call(http, method, f"/sessions/{sid}{path}", second)
        assert reply.status_code == 403, (method, path, reply.text)
    assert (await http.get(f"/sessions/{sid}", headers=_auth(second))).json()["active"] is True
    await back.close()
    await home.close()


async def test_a_fresh_credential_yields_a_later_reconnect_token(
    shared_inproc: InProcessHub,
) -> None:
    owner = new_user()
    short = await shared_inproc.connect(token(owner, ttl=60))
    sid = short.welcome["session_id"]
    longer = await shared_inproc.connect(token(owner, ttl=600), session_id=sid)
    assert (
        _claims(longer.welcome["reconnect_token"])["exp"]
        > _claims(short.welcome["reconnect_token"])["exp"]
    )
    await longer.close()
    await short.close()


async def test_the_capability_follows_its_sessions_ag_ui_stream_and_no_other(
    shared_inproc: InProcessHub,
) -> None:
    """The AG-UI stream is a read over HTTP: the capability follows its own session's,
    is refused another session's, and is refused its own once the session ended."""
    http = shared_inproc.http
    owner = new_user()
    home = await shared_inproc.connect(token(owner))
    sid = home.welcome["session_id"]
    other = await shared_inproc.connect(token(owner))
    agent, cap = await _agent(shared_inproc, owner, sid)
    transport = StreamingASGITransport(shared_inproc.app)
    async with (
        httpx.AsyncClient(transport=transport, base_url=BASE_URL) as streaming,
        streaming.stream("GET", f"/sessions/{sid}/ag-ui", headers=_auth(cap)) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert (await Reader(response.aiter_lines()).next())["type"] == "RUN_STARTED"
    elsewhere = await http.get(f"/sessions/{other.welcome['session_id']}/ag-ui", headers=_auth(cap))
    assert elsewhere.status_code == 403, elsewhere.text
    assert (await http.delete(f"/sessions/{sid}", headers=_auth(token(owner)))).status_code == 200
    late = await http.get(f"/sessions/{sid}/ag-ui", headers=_auth(cap))
    assert late.status_code == 410, late.text
    await agent.close()
    await other.close()
    await home.close()
