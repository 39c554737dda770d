"""The voice floor across two hub processes on Redis (docs/protocol.md section 17): takes
racing from both processes leave one holder, the one the last ``voice_floor`` in ``seq``
order names, on every process; a control sent on one reaches the holder on the other.
The rules themselves are tested in process: tests/inproc/test_voice_floor.py."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from tests.support.cluster import Cluster
from tests.support.frames import bearer, is_, new_user
from tests.support.hub import token
from tests.support.ws import WS, connect


# Needs processes: two hubs on one database and the Redis broker.
@pytest.mark.redis
@pytest.mark.postgres
async def test_takes_racing_on_two_processes_leave_one_holder_in_seq_order(two: Cluster) -> None:
    first, second = two.hubs
    owner = new_user()
    laptop = await connect(first.ws_url, token(owner))
    sid = laptop.welcome["session_id"]
    async with httpx.AsyncClient(base_url=first.base_url) as http:
        issued = await http.post(f"/sessions/{sid}/join-token", headers=bearer(owner))
    phone = await connect(second.ws_url, issued.json()["join_token"])

    async def takes(ws: WS, n: int) -> None:
        for _ in range(n):
            await ws.send({"type": "take_voice"})

    await asyncio.gather(takes(laptop, 15), takes(phone, 15))
    floors: dict[str, list[dict[str, object]]] = {"laptop": [], "phone": []}
    for name, ws in (("laptop", laptop), ("phone", phone)):
        while len(floors[name]) < 30:
            frame = await ws.recv_until(is_("voice_floor"), timeout=10)
            floors[name].append(frame)
    # Both processes delivered the same floor history, in seq order.
    assert floors["laptop"] == floors["phone"]
    last = floors["laptop"][-1]
    # Every change names the holder before it: one chain, no two takes from one floor.
    for before, after in zip(floors["laptop"], floors["laptop"][1:], strict=False):
        assert after["previous_device_id"] == before["device_id"]
    for hub in (first, second):
        late = await connect(hub.ws_url, token(owner), session_id=sid)
        assert late.welcome["voice_floor"] == {
            "device_id": last["device_id"],
            "connection_id": last["connection_id"],
        }
        await late.close()

    # The phone holds it; the laptop's interrupt, sent on the other process, reaches it.
    await phone.request({"type": "take_voice"})
    sent = await laptop.request({"type": "agent_control", "action": "interrupt"})
    assert sent["device_id"] == phone.welcome["device_id"]
    heard = await phone.recv_until(is_("agent_control", seq=sent["seq"]), timeout=5)
    assert heard["action"] == "interrupt"
    await laptop.close()
    await phone.close()
