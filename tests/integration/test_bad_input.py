"""An oversized client frame (docs/protocol.md sections 2-3, 6) is closed 1009 and the
rest of the session is untouched. The other bad frames, each answered with an ``error``
frame: tests/inproc/test_bad_input.py."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support.frames import new_user
from tests.support.hub import HubProcess, token
from tests.support.ws import WS, connect


async def _setup(hub: HubProcess) -> tuple[str, str, WS, WS]:
    user = new_user()
    a = await connect(hub.ws_url, token(user))
    sid = a.welcome["session_id"]
    b = await connect(hub.ws_url, token(user), session_id=sid)
    reply = await a.request({"type": "update_session_state", "patch": {"keep": {"me": [1, 2]}}})
    assert reply["type"] == "session_state_updated"
    await b.recv_type("session_state_updated")
    return user, sid, a, b


async def _state_over_http(hub: HubProcess, user: str, sid: str) -> Any:
    async with httpx.AsyncClient(base_url=hub.base_url) as http:
        got = await http.get(
            f"/sessions/{sid}/state", headers={"Authorization": f"Bearer {token(user)}"}
        )
    assert got.status_code == 200
    return got.json()


# Needs a process: the 64 KiB frame limit is the server's (uvicorn's ws_max_size), on the wire.
async def test_a_frame_over_64_kib_is_closed_1009_and_the_rest_is_untouched(
    shared_hub: HubProcess,
) -> None:
    user, sid, a, b = await _setup(shared_hub)
    # Just under the limit is fine.
    fits = {"type": "contextual_update", "text": "big", "data": "x" * (60 * 1024)}
    reply = await a.request(fits)
    assert reply["type"] == "contextual_update" and len(reply["data"]) == 60 * 1024
    await b.recv_type("contextual_update")
    await a.send({"type": "contextual_update", "text": "huge", "data": "x" * (65 * 1024)})
    code, _ = await a.closed()
    assert code == 1009
    left = await b.recv_type("client_left")
    assert left["connection_id"] == a.welcome["connection_id"]
    pong = await b.request({"type": "ping"})
    assert pong["type"] == "pong"
    assert await _state_over_http(shared_hub, user, sid) == {
        "state": {"keep": {"me": [1, 2]}},
        "version": 1,
    }
    await b.close()
