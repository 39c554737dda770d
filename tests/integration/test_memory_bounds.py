"""Bounded by bytes (docs/protocol.md section 4, v1.1): a flood into a session with a client
that does not read, and many sessions of big events that end, leave the hub's resident
memory nearly where it was."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import websockets

from tests.support.hub import HubFactory, HubProcess, token
from tests.support.ws import WS, connect

MiB = 1024 * 1024


async def eventually(predicate: Callable[[], bool], timeout: float = 300.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110 (polling counters other tasks update)
            await asyncio.sleep(0.05)


WINDOW = 8  # frames in flight ahead of the slowest reader: 400 KB, under the 1 MiB budget

FAST = {"COMPANION_RATE_LIMIT_PER_SECOND": "100000", "COMPANION_RATE_LIMIT_BURST": "100000"}


def rss(hub: HubProcess) -> int:
    assert hub.proc is not None
    for line in Path(f"/proc/{hub.proc.pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


class Peak:
    """Samples the hub's resident memory every 20 ms while it runs."""

    def __init__(self, hub: HubProcess) -> None:
        self.hub = hub
        self.peak = rss(hub)

    async def run(self) -> None:
        while True:
            self.peak = max(self.peak, rss(self.hub))
            await asyncio.sleep(0.02)


async def _drain(ws: WS, counts: dict[int, int], key: int) -> None:
    """Count the updates this client receives (raw: parsing 200 MB of JSON here would
    measure the test, not the hub)."""
    with contextlib.suppress(websockets.ConnectionClosed, TimeoutError):
        while True:
            raw = await asyncio.wait_for(ws.conn.recv(), 60)
            head = raw[:120] if isinstance(raw, str) else raw[:120].decode(errors="replace")
            if '"type":"contextual_update"' in head:
                counts[key] = counts.get(key, 0) + 1


async def _flood(
    ws: WS, frames: int, payload: str, sent: list[int] | None = None, read: Any = None
) -> None:
    """Send ``frames`` big updates. With ``sent`` and ``read`` (how many the slowest
    reading client has), keep at most ``WINDOW`` frames ahead of it, as a real sender
    paced by its screens would: the readers share this process with the senders, and a
    reader that falls a megabyte behind is, rightly, cut off too."""
    for n in range(frames):
        if sent is not None and read is not None:
            while sent[0] - read() >= WINDOW:  # noqa: ASYNC110 (paced by another task)
                await asyncio.sleep(0.002)
            sent[0] += 1
        await ws.send({"type": "contextual_update", "text": "bulk", "data": {"n": n, "p": payload}})


async def test_a_200_mb_flood_past_a_client_that_does_not_read(hub_factory: HubFactory) -> None:
    hub = hub_factory(env=FAST).start()
    user = "flood-owner"
    owner = await connect(hub.ws_url, token(user))
    sid = owner.welcome["session_id"]
    url = f"{hub.ws_url}/ws?{urlencode({'token': token(user), 'session_id': sid})}"
    slow = await websockets.connect(url, max_queue=1, max_size=None, ping_interval=None)
    senders = [await connect(hub.ws_url, token(user), session_id=sid) for _ in range(4)]
    payload = "x" * (50 * 1024)
    per_sender = 1000  # 4 x 1000 x 50 KB = 200 MB
    await asyncio.sleep(0.5)
    before = rss(hub)
    peak = Peak(hub)
    sampler = asyncio.create_task(peak.run())
    counts: dict[int, int] = {}
    readers = [asyncio.create_task(_drain(ws, counts, i)) for i, ws in enumerate([owner, *senders])]
    sent = [0]

    def slowest() -> int:
        return min(counts.get(i, 0) for i in range(len(senders) + 1))

    await asyncio.gather(*(_flood(ws, per_sender, payload, sent, slowest) for ws in senders))
    total = per_sender * len(senders)
    await eventually(lambda: min(counts.get(i, 0) for i in range(len(senders) + 1)) >= total)
    sampler.cancel()
    grown = peak.peak - before
    print(f"flood: resident memory {before / MiB:.1f} MiB -> peak {peak.peak / MiB:.1f} MiB")
    assert grown < 50 * MiB, f"the hub grew by {grown / MiB:.1f} MiB"
    # The slow client was cut off (its queue overflowed), and only it: every other
    # client got all 4,000 frames above.
    async with httpx.AsyncClient(base_url=hub.base_url) as http:
        metrics = (await http.get("/metrics")).text
    assert "companion_slow_consumer_closes_total 1.0" in metrics.splitlines()
    await slow.close()
    for task in readers:
        task.cancel()
    for ws in [owner, *senders]:
        await ws.close()


async def test_sessions_of_big_events_that_end_leave_memory(hub_factory: HubFactory) -> None:
    hub = hub_factory(env=FAST).start()
    payload = "y" * (40 * 1024)
    await asyncio.sleep(0.5)
    before = rss(hub)
    peak = Peak(hub)
    sampler = asyncio.create_task(peak.run())

    async def one_session(n: int) -> None:
        ws = await connect(hub.ws_url, token(f"bounds-{n}"))
        counts: dict[int, int] = {}
        reader = asyncio.create_task(_drain(ws, counts, 0))
        await _flood(ws, 150, payload, [0], lambda: counts.get(0, 0))
        await eventually(lambda: counts.get(0, 0) >= 150)
        reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reader
        await ws.send({"type": "end_session"})
        await ws.closed(timeout=10)

    for batch in range(6):  # 60 sessions, 10 at a time
        await asyncio.gather(*(one_session(batch * 10 + i) for i in range(10)))
    sampler.cancel()
    grown = peak.peak - before
    print(f"60 sessions: resident memory {before / MiB:.1f} MiB -> peak {peak.peak / MiB:.1f} MiB")
    assert grown < 150 * MiB, f"the hub grew by {grown / MiB:.1f} MiB"
