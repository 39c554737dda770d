"""Inactive sessions expire (COMPANION_SESSION_TTL): the sweep ends them with
``session_ended`` + 4410, and their id then opens a new session with ``reason: expired``."""

from __future__ import annotations

import uuid

import httpx

from tests.support.hub import HubFactory, token
from tests.support.ws import connect

SHORT = {"COMPANION_SESSION_TTL": "1", "COMPANION_SWEEP_INTERVAL": "0.2"}


async def test_an_idle_session_is_ended_by_the_sweep_and_its_id_replaced(
    hub_factory: HubFactory,
) -> None:
    hub = hub_factory(env=SHORT).start()
    user = f"u-{uuid.uuid4().hex[:8]}"
    a = await connect(hub.ws_url, token(user))
    sid = a.welcome["session_id"]
    b = await connect(hub.ws_url, token(user), session_id=sid)
    for ws in (a, b):
        # Idle: nobody sends anything. The TTL is 1 s; allow a loaded machine plenty.
        ended = await ws.recv_type("session_ended", timeout=15)
        assert ended["session_id"] == sid and ended["reason"] == "expired"
        assert isinstance(ended["seq"], int)
        assert (await ws.closed())[0] == 4410

    async with httpx.AsyncClient(base_url=hub.base_url) as http:
        info = await http.get(
            f"/sessions/{sid}", headers={"Authorization": f"Bearer {token(user)}"}
        )
    assert info.json()["active"] is False and info.json()["end_reason"] == "expired"

    for path_session in (False, True):
        again = await connect(hub.ws_url, token(user), session_id=sid, path_session=path_session)
        w = again.welcome
        assert w["created"] is True and w["session_id"] != sid
        assert w["requested_session_id"] == sid and w["reason"] == "expired"
        await again.close()


async def test_activity_keeps_a_session_alive(hub_factory: HubFactory) -> None:
    """A session in use is not swept while an idle one beside it is."""
    hub = hub_factory(env={"COMPANION_SESSION_TTL": "3", "COMPANION_SWEEP_INTERVAL": "0.2"}).start()
    user = f"u-{uuid.uuid4().hex[:8]}"
    busy = await connect(hub.ws_url, token(user))
    idle = await connect(hub.ws_url, token(user))
    # Keep `busy` active (well within its TTL) until `idle` has been swept.
    for _ in range(200):
        reply = await busy.request({"type": "update_session_state", "key": "t", "value": 1})
        assert reply["type"] == "session_state_updated", reply
        try:
            ended = await idle.recv_type("session_ended", timeout=0.3)
        except TimeoutError:
            continue
        assert ended["reason"] == "expired"
        break
    else:
        raise AssertionError("the idle session was never swept")
    assert (await idle.closed())[0] == 4410
    pong = await busy.request({"type": "ping"})
    assert pong["type"] == "pong"
    await busy.close()
