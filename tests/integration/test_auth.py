"""Connect-time authentication (docs/protocol.md sections 1, 6, 8) on a real hub: no token
is ever written to the hub's log. The refusals (one ``error`` frame then close 4401) are
tested in process: tests/inproc/test_auth.py."""

from __future__ import annotations

import time

import httpx
import jwt

from tests.support.hub import SECRET, HubFactory, token
from tests.support.ws import connect

EXPIRED = jwt.encode({"sub": "alice", "exp": int(time.time()) - 30}, SECRET, algorithm="HS256")


# Needs a process: uvicorn's access log and the hub's log file, read after it stops.
async def test_the_token_never_reaches_the_log(hub_factory: HubFactory) -> None:
    hub = hub_factory()
    hub.access_log = True  # uvicorn logs each request line and WebSocket path at info
    hub.start()
    good = token("log-user")
    expired = EXPIRED
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
