"""Connect-time authentication (docs/protocol.md sections 1, 6, 8): each refusal is one
``error`` frame then close 4401, and no token is ever written to the hub's log."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import httpx
import jwt
import pytest
import websockets

from tests.support.hub import SECRET, HubFactory, HubProcess, token
from tests.support.ws import connect


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "alice", "exp": int(time.time()) + 600, **extra}


BAD_TOKENS: dict[str, str | None] = {
    "missing": None,
    "expired": jwt.encode(_claims(exp=int(time.time()) - 30), SECRET, algorithm="HS256"),
    "bad-signature": jwt.encode(_claims(), SECRET + "-not-it", algorithm="HS256"),
    "alg-none": f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}.",
    "no-sub": jwt.encode({"exp": int(time.time()) + 600}, SECRET, algorithm="HS256"),
    "no-exp": jwt.encode({"sub": "alice"}, SECRET, algorithm="HS256"),
    "garbage": "not-a-jwt",
}


@pytest.mark.parametrize("kind", list(BAD_TOKENS))
async def test_a_bad_token_gets_one_error_frame_then_4401(
    shared_hub: HubProcess, kind: str
) -> None:
    ws = await connect(shared_hub.ws_url, BAD_TOKENS[kind], expect_welcome=False)
    error = await ws.recv()
    assert error["type"] == "error" and error["code"] == "unauthorized", error
    assert error["message"] and isinstance(error["timestamp"], int)
    code, reason = await ws.closed()
    assert code == 4401, (code, reason)


@pytest.mark.parametrize("kind", ["expired", "alg-none", "no-sub"])
async def test_a_bad_bearer_header_is_refused_the_same_way(
    shared_hub: HubProcess, kind: str
) -> None:
    bad = BAD_TOKENS[kind]
    ws = await connect(
        shared_hub.ws_url, None, headers={"Authorization": f"Bearer {bad}"}, expect_welcome=False
    )
    error = await ws.recv()
    assert error["type"] == "error" and error["code"] == "unauthorized"
    assert (await ws.closed())[0] == 4401


async def test_nothing_but_the_error_frame_precedes_the_close(shared_hub: HubProcess) -> None:
    ws = await connect(shared_hub.ws_url, BAD_TOKENS["expired"], expect_welcome=False)
    frames = []
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            frames.append(json.loads(await asyncio.wait_for(ws.conn.recv(), 5)))
    code = closed.value.rcvd.code if closed.value.rcvd else None
    assert [f["type"] for f in frames] == ["error"]
    assert code == 4401


async def test_a_token_in_the_authorization_header_works(shared_hub: HubProcess) -> None:
    ws = await connect(
        shared_hub.ws_url, None, headers={"Authorization": f"Bearer {token('bearer-user')}"}
    )
    assert ws.welcome["user_id"] == "bearer-user" and ws.welcome["created"] is True
    pong = await ws.request({"type": "ping"})
    assert pong["type"] == "pong"
    await ws.close()


async def test_the_token_never_reaches_the_log(hub_factory: HubFactory) -> None:
    hub = hub_factory()
    hub.access_log = True  # uvicorn logs each request line and WebSocket path at info
    hub.start()
    good = token("log-user")
    expired = BAD_TOKENS["expired"]
    assert expired is not None
    ws = await connect(hub.ws_url, good)
    sid = ws.welcome["session_id"]
    reconnect = ws.welcome["reconnect_token"]
    again = await connect(hub.ws_url, reconnect, session_id=sid)
    refused = await connect(hub.ws_url, expired, expect_welcome=False)
    assert (await refused.closed())[0] == 4401
    header = await connect(
        hub.ws_url, None, headers={"Authorization": f"Bearer {good}"}, expect_welcome=False
    )
    await header.recv()
    async with httpx.AsyncClient(base_url=hub.base_url) as http:
        assert (await http.get("/", params={"token": good})).status_code == 200
        listed = await http.get(f"/sessions/{sid}", headers={"Authorization": f"Bearer {good}"})
        assert listed.status_code == 200
        assert (await http.get("/sessions", params={"token": good})).status_code == 401
    for client in (ws, again, header):
        await client.close()
    hub.stop()
    assert hub.log_path is not None
    log = hub.log_path.read_text()
    # The log is really on: the hub's line per socket (uvicorn's own are silenced).
    assert "companion_ws.ws: accepted" in log and "GET /sessions" in log
    assert "via=query" in log and "via=header" in log
    assert "token=[redacted]" in log
    for secret in (good, expired, reconnect):
        assert secret not in log
        # Nor any of its parts (a JWT's signature alone is a credential's fingerprint).
        assert secret.split(".")[2] not in log
