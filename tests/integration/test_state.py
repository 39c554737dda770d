"""Session state durability across restarts of a real hub (docs/protocol.md sections 2-4);
the rules of state updates are tested in process: tests/inproc/test_state.py."""

from __future__ import annotations

import httpx
import pytest

from tests.support.frames import bearer, get_state, new_user
from tests.support.hub import HubFactory, token
from tests.support.ws import connect


# Needs a process: the hub is stopped with SIGTERM or killed with SIGKILL, then restarted.
@pytest.mark.every_store
@pytest.mark.parametrize("how", ["sigterm", "sigkill"])
async def test_committed_state_survives_a_restart(hub_factory: HubFactory, how: str) -> None:
    hub = hub_factory().start()
    user = new_user()
    ws = await connect(hub.ws_url, token(user))
    sid = ws.welcome["session_id"]
    for n in range(5):
        reply = await ws.request({"type": "update_session_state", "key": f"k{n}", "value": n})
        assert reply["type"] == "session_state_updated"
    # Told of version 5 means committed: even a crash right now keeps it.
    if how == "sigkill":
        hub.kill()
        hub.start()
    else:
        hub.restart()
    async with httpx.AsyncClient(base_url=hub.base_url) as http:
        rest = await http.get(f"/sessions/{sid}/state", headers=bearer(user))
    assert rest.status_code == 200
    assert rest.json() == {"state": {f"k{n}": n for n in range(5)}, "version": 5}
    again = await connect(hub.ws_url, token(user), session_id=sid)
    assert again.welcome["created"] is False and again.welcome["state_version"] == 5
    snapshot = await get_state(again)
    assert snapshot["state"] == rest.json()["state"]
    more = await again.request({"type": "update_session_state", "key": "k5", "value": 5})
    assert more["version"] == 6
    await again.close()
