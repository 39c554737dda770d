"""Least privilege across processes (docs/protocol.md section 12): a revoked device is cut
off on every hub of a cluster. The rules of roles, devices, their lifetime and token
refresh are tested in process: tests/inproc/test_roles.py."""

from __future__ import annotations

import httpx
import pytest

from tests.support.cluster import Cluster
from tests.support.frames import bearer, new_user
from tests.support.hub import token
from tests.support.ws import connect


# Needs processes: two hubs on one database and the Redis broker, the device moving between them.
@pytest.mark.redis
@pytest.mark.postgres
async def test_a_revoked_device_is_cut_off_on_every_process(two: Cluster) -> None:
    first, second = two.hubs
    owner = new_user()
    owner_token = token(owner)
    home = await connect(first.ws_url, owner_token)
    sid = home.welcome["session_id"]
    async with httpx.AsyncClient(base_url=first.base_url) as http:
        issued = await http.post(f"/sessions/{sid}/join-token", headers=bearer(owner))
        assert issued.status_code == 201, issued.text
        assert issued.json()["role"] == "companion"
        phone = await connect(first.ws_url, issued.json()["join_token"])
    # The phone comes back through the other process.
    await phone.close()
    moved = await connect(second.ws_url, phone.welcome["reconnect_token"])
    assert moved.welcome["device_id"] == phone.welcome["device_id"]
    async with httpx.AsyncClient(base_url=first.base_url) as http:
        revoked = await http.delete(
            f"/sessions/{sid}/devices/{moved.welcome['device_id']}", headers=bearer(owner)
        )
    assert revoked.status_code == 200
    assert (await moved.recv_until(lambda f: f["type"] == "error", timeout=2))[
        "code"
    ] == "forbidden"
    assert (await moved.closed(timeout=2))[0] == 4403
    for hub in (first, second):
        again = await connect(hub.ws_url, moved.welcome["reconnect_token"], expect_welcome=False)
        assert (await again.closed())[0] == 4401
    await home.close()
