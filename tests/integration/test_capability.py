"""The agent capability is the agent role, never more (docs/protocol.md section 11, v1.2), and
a reconnect token never outlives what it came from (section 12, v1.2), against real
hubs: the socket, the HTTP API (on SQLite and PostgreSQL) and gRPC."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import httpx
import jwt
import pytest

from companion_ws.grpc.v1 import companion_pb2 as pb
from tests.support.backends import grpc_api, status_of
from tests.support.backends import grpc_hub as backend_grpc_hub
from tests.support.hub import SECRET, HubProcess, token
from tests.support.ws import WS, connect

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


def _user() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


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


async def _agent(hub: HubProcess, who: str, sid: str, **claims: Any) -> tuple[WS, str]:
    """An agent's connection (``client=agent``) and the capability its welcome carries."""
    ws = await connect(hub.ws_url, token(who, **claims), session_id=sid, client="agent")
    assert ws.welcome["role"] == "agent"
    cap = ws.welcome["agent_capability"]
    assert isinstance(cap, str)
    return ws, cap


@pytest.fixture
async def http(shared_hub: HubProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=shared_hub.base_url, timeout=15) as client:
        yield client


async def test_over_http_the_capability_reads_its_session_and_nothing_more(
    shared_hub: HubProcess, http: httpx.AsyncClient
) -> None:
    owner = _user()
    home = await connect(shared_hub.ws_url, token(owner))
    sid = home.welcome["session_id"]
    agent, cap = await _agent(shared_hub, owner, sid)
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
    shared_hub: HubProcess, http: httpx.AsyncClient
) -> None:
    owner = _user()
    home = await connect(shared_hub.ws_url, token(owner))
    sid = home.welcome["session_id"]
    agent, cap = await _agent(shared_hub, "svc-1", sid, service=True)
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
    shared_hub: HubProcess,
) -> None:
    owner = _user()
    home = await connect(shared_hub.ws_url, token(owner))
    sid = home.welcome["session_id"]
    agent, cap = await _agent(shared_hub, owner, sid)
    expires = _claims(cap)["exp"]
    for client in (None, "agent"):
        ws = await connect(shared_hub.ws_url, cap, client=client)
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
    shared_hub: HubProcess, http: httpx.AsyncClient
) -> None:
    owner = _user()
    home = await connect(shared_hub.ws_url, token(owner))
    sid = home.welcome["session_id"]
    agent, cap = await _agent(shared_hub, owner, sid)
    assert (await http.get(f"/sessions/{sid}", headers=_auth(cap))).status_code == 200
    ended = await http.delete(f"/sessions/{sid}", headers=_auth(token(owner)))
    assert ended.status_code == 200
    for path in READS:
        reply = await http.get(f"/sessions/{sid}{path}", headers=_auth(cap))
        assert reply.status_code == 410, (path, reply.text)
    # The owner still reads the ended session.
    assert (await http.get(f"/sessions/{sid}", headers=_auth(token(owner)))).status_code == 200
    late = await connect(shared_hub.ws_url, cap, expect_welcome=False)
    refused = await late.recv()
    assert refused["type"] == "error" and refused["code"] == "session_ended", refused
    await late.closed()
    await agent.close()
    await home.close()


async def test_a_short_login_never_becomes_a_long_owner_pass(
    shared_hub: HubProcess, http: httpx.AsyncClient
) -> None:
    """The audit's N3: a 3 s access token, a 24 h reconnect TTL."""
    owner = _user()
    login = token(owner, ttl=3)
    home = await connect(shared_hub.ws_url, login)
    sid = home.welcome["session_id"]
    first = home.welcome["reconnect_token"]
    assert _claims(first)["exp"] <= _claims(login)["exp"]
    back = await connect(shared_hub.ws_url, first, session_id=sid)
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


async def test_a_fresh_credential_yields_a_later_reconnect_token(shared_hub: HubProcess) -> None:
    owner = _user()
    short = await connect(shared_hub.ws_url, token(owner, ttl=60))
    sid = short.welcome["session_id"]
    longer = await connect(shared_hub.ws_url, token(owner, ttl=600), session_id=sid)
    assert (
        _claims(longer.welcome["reconnect_token"])["exp"]
        > _claims(short.welcome["reconnect_token"])["exp"]
    )
    await longer.close()
    await short.close()


# ---------------------------------------------------------------- gRPC


@pytest.fixture(scope="module")
def grpc_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubProcess, int]]:
    with backend_grpc_hub(tmp_path_factory.mktemp("grpc-capability")) as hub:
        yield hub


@pytest.fixture
async def api(grpc_hub: tuple[HubProcess, int]) -> AsyncIterator[Any]:
    async with grpc_api(grpc_hub[1]) as client:
        yield client


def _bearer(tok: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {tok}"),)


async def test_over_grpc_the_capability_only_reads_its_session(
    api: Any, grpc_hub: tuple[HubProcess, int]
) -> None:
    hub = grpc_hub[0]
    owner = _user()
    home = await connect(hub.ws_url, token(owner))
    sid = home.welcome["session_id"]
    agent, cap = await _agent(hub, owner, sid)
    reconnect = home.welcome["reconnect_token"]
    for tok in (cap, reconnect):
        state = await api.GetState(pb.GetStateRequest(session_id=sid), metadata=_bearer(tok))
        assert state.session_id == sid
        update = pb.UpdateStateRequest(session_id=sid, patch_json=json.dumps({"a": 1}))
        assert await status_of(api.UpdateState(update, metadata=_bearer(tok))) == (
            grpc.StatusCode.PERMISSION_DENIED
        )
        publish = pb.PublishRequest(
            session_id=sid, type="contextual_update", data_json=json.dumps({"text": "x"})
        )
        assert await status_of(api.Publish(publish, metadata=_bearer(tok))) == (
            grpc.StatusCode.PERMISSION_DENIED
        )
        tool = pb.ToolRequest(session_id=sid, tool_id="echo", tool_call_id=uuid.uuid4().hex)
        assert await status_of(api.CallTool(tool, metadata=_bearer(tok))) == (
            grpc.StatusCode.PERMISSION_DENIED
        )
    # Subscribe reads: the history from the start (the agent's client_joined first).
    watch = api.Subscribe(pb.SubscribeRequest(session_id=sid), metadata=_bearer(cap))
    first = await watch.read()
    assert first.seq == 1
    watch.cancel()
    other = await connect(hub.ws_url, token(owner))
    elsewhere = pb.GetStateRequest(session_id=other.welcome["session_id"])
    assert await status_of(api.GetState(elsewhere, metadata=_bearer(cap))) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    await other.close()
    await home.request({"type": "end_session"})
    assert await status_of(
        api.GetState(pb.GetStateRequest(session_id=sid), metadata=_bearer(cap))
    ) == (grpc.StatusCode.NOT_FOUND)
    await agent.close()
    await home.close()
