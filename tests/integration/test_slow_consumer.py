"""A client that stops reading (docs/protocol.md section 4): past its send-queue limit it is
closed with 4409, while another client of the same session keeps receiving everything.

The slow client is a raw ``websockets`` connection with ``max_queue=1`` that does not
call ``recv``: the library stops reading the socket, the kernel buffers fill, the
server's transport pauses, and the hub's outbox grows past COMPANION_OUTBOX_LIMIT. The
kernel buffers absorb megabytes, so a backend publishes big events until the hub's
``companion_slow_consumer_closes_total`` counter says the overflow happened.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any
from urllib.parse import urlencode

import httpx
import websockets

from tests.support.hub import HubFactory, HubProcess, token
from tests.support.ws import WS, connect

PAYLOAD = "x" * (48 * 1024)
MAX_EVENTS = 2000  # about 100 MB: far beyond any loopback buffering


def _hub(hub_factory: HubFactory, grace: float) -> HubProcess:
    return hub_factory(
        env={"COMPANION_OUTBOX_LIMIT": "50", "COMPANION_SLOW_CLOSE_GRACE": str(grace)}
    ).start()


async def _slow_closes(http: httpx.AsyncClient) -> float:
    text = (await http.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith("companion_slow_consumer_closes_total "):
            return float(line.split()[1])
    raise AssertionError("no companion_slow_consumer_closes_total in /metrics")


async def _flood_until_overflow(hub: HubProcess, user: str, sid: str, fast: WS) -> int:
    """Publish big events from a backend until the hub reports a slow close. The fast
    client reads every one of them as it goes; returns the last published seq."""
    headers = {"Authorization": f"Bearer {token(user)}"}
    async with httpx.AsyncClient(base_url=hub.base_url, headers=headers, timeout=30) as http:
        for n in range(MAX_EVENTS):
            posted = await http.post(
                f"/sessions/{sid}/events", json={"text": "bulk", "data": {"n": n, "p": PAYLOAD}}
            )
            assert posted.status_code == 201, posted.text
            seq = int(posted.json()["seq"])
            got = await fast.recv_until(lambda f: f["type"] == "contextual_update", timeout=10)
            assert got["seq"] == seq and got["data"]["n"] == n
            if n % 10 == 9 and await _slow_closes(http) >= 1:
                return seq
    raise AssertionError(f"no slow-consumer close after {MAX_EVENTS} big events")


async def _slow_client(hub: HubProcess, user: str, sid: str) -> websockets.ClientConnection:
    url = f"{hub.ws_url}/ws?{urlencode({'token': token(user), 'session_id': sid})}"
    return await websockets.connect(url, max_queue=1, max_size=None, ping_interval=None)


async def test_a_client_that_reads_again_drains_then_sees_4409(hub_factory: HubFactory) -> None:
    hub = _hub(hub_factory, grace=120)  # long: the slow client will come back and read
    user = f"u-{uuid.uuid4().hex[:8]}"
    fast = await connect(hub.ws_url, token(user), client="fast")
    sid = fast.welcome["session_id"]
    slow = await _slow_client(hub, user, sid)
    joined = await fast.recv_until(lambda f: f["type"] == "client_joined" and f["client"] == "ui")
    slow_id = joined["connection_id"]

    last = await _flood_until_overflow(hub, user, sid, fast)
    # The fast client got every event while the slow one was stuck (checked as it went);
    # it still gets a fresh one at once.
    reply = await fast.request({"type": "contextual_update", "text": "still here", "data": None})
    assert reply["seq"] == last + 1

    frames: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(30):
            while True:
                frames.append(json.loads(await slow.recv()))
    except websockets.ConnectionClosed as closed:
        assert closed.rcvd is not None, "closed without a close frame"
        assert closed.rcvd.code == 4409, closed.rcvd
    welcome, events = frames[0], frames[1:]
    assert welcome["type"] == "session_joined" and welcome["connection_id"] == slow_id
    seqs = [f["seq"] for f in events]
    # What reached it before the overflow arrives in order with no gap; the rest was
    # dropped (it would resume from its last seq on reconnect).
    assert seqs == list(range(welcome["seq"] + 1, welcome["seq"] + 1 + len(seqs)))
    assert seqs[-1] < last
    left = await fast.recv_until(lambda f: f["type"] == "client_left", timeout=10)
    assert left["connection_id"] == slow_id
    presence = await fast.request({"type": "get_presence"})
    assert [c["connection_id"] for c in presence["clients"]] == [fast.welcome["connection_id"]]
    await fast.close()


async def test_a_client_that_never_reads_is_cut_off_after_the_grace_period(
    hub_factory: HubFactory,
) -> None:
    hub = _hub(hub_factory, grace=0.5)
    user = f"u-{uuid.uuid4().hex[:8]}"
    fast = await connect(hub.ws_url, token(user), client="fast")
    sid = fast.welcome["session_id"]
    slow = await _slow_client(hub, user, sid)
    joined = await fast.recv_until(lambda f: f["type"] == "client_joined" and f["client"] == "ui")
    slow_id = joined["connection_id"]

    await _flood_until_overflow(hub, user, sid, fast)
    # Without reading a byte more, the slow client is let go: its presence ends.
    left = await fast.recv_until(
        lambda f: f["type"] == "client_left" and f["connection_id"] == slow_id, timeout=15
    )
    assert left["session_id"] == sid
    presence = await fast.request({"type": "get_presence"})
    assert [c["connection_id"] for c in presence["clients"]] == [fast.welcome["connection_id"]]
    # When it finally reads, it gets what the kernel held, then the end of the stream.
    try:
        async with asyncio.timeout(30):
            while True:
                await slow.recv()
    except websockets.ConnectionClosed as closed:
        assert closed.rcvd is None or closed.rcvd.code != 1000
    await fast.close()
