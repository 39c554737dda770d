"""Durable before visible (docs/protocol.md section 4, v1.1): whatever a client saw survives
``kill -9``, ``seq`` is never reused, and a client resuming with ``last_seq`` alone
gets a replay."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import pytest
import websockets

from tests.support.hub import HubFactory, token
from tests.support.ws import WS, connect

ROUNDS = 20
SENDERS = 3


async def _collect(
    ws: WS, seen: dict[int, dict[str, Any]], counts: list[int], enough: int, done: asyncio.Event
) -> None:
    """Every broadcast this socket receives, by seq; a number seen twice must be the same
    event."""
    with contextlib.suppress(websockets.ConnectionClosed, TimeoutError, OSError):
        while True:
            frame = await ws.recv(timeout=30)
            seq = frame.get("seq")
            if frame["type"] in ("contextual_update", "session_state_updated") and seq:
                if seq in seen:
                    assert seen[seq] == frame, f"seq {seq} reused: {seen[seq]} != {frame}"
                seen[seq] = frame
                counts[0] += 1
                if counts[0] >= enough:
                    done.set()


async def _burst(ws: WS, label: str) -> None:
    with contextlib.suppress(websockets.ConnectionClosed, OSError):
        for i in range(10_000):
            if i % 3 == 0:
                await ws.send({"type": "update_session_state", "patch": {label: i}})
            else:
                await ws.send({"type": "contextual_update", "text": f"{label}-{i}"})
            await asyncio.sleep(0.002)


async def _history(base_url: str, sid: str, tok: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after = 0
    async with httpx.AsyncClient(base_url=base_url, timeout=15) as http:
        while True:
            reply = await http.get(
                f"/sessions/{sid}/history",
                params={"after_seq": after, "limit": 1000},
                headers={"Authorization": f"Bearer {tok}"},
            )
            page = reply.json()
            events.extend(page["events"])
            after = page["next_after_seq"]
            if not page["has_more"]:
                return events


@pytest.mark.every_store
async def test_kill_9_in_the_middle_of_bursts_loses_nothing_a_client_saw(
    hub_factory: HubFactory,
) -> None:
    hub = hub_factory().start()
    tok = token("alice")
    first = await connect(hub.ws_url, tok)
    sid, epoch = first.welcome["session_id"], first.welcome["epoch"]
    await first.close()
    seen: dict[int, dict[str, Any]] = {}
    last_seen = 0
    for round_no in range(ROUNDS):
        # A client that kept only a number (no epoch) comes back after the crash.
        back = await connect(hub.ws_url, tok, session_id=sid, last_seq=last_seen)
        assert back.welcome["epoch"] == epoch, f"round {round_no}: the epoch changed"
        assert back.welcome["resumed"] is True, f"round {round_no}: {back.welcome}"
        while True:
            frame = await back.recv(timeout=10)
            assert frame["type"] != "resync_required", f"round {round_no}: {frame}"
            if frame["type"] == "resumed":
                break
        clients = [back] + [
            await connect(hub.ws_url, tok, session_id=sid) for _ in range(SENDERS - 1)
        ]
        counts, enough = [0], asyncio.Event()
        readers = [
            asyncio.create_task(_collect(ws, seen, counts, 40 + round_no, enough)) for ws in clients
        ]
        writers = [
            asyncio.create_task(_burst(ws, f"r{round_no}c{i}")) for i, ws in enumerate(clients)
        ]
        await asyncio.wait_for(enough.wait(), 30)
        hub.kill()  # SIGKILL while events are being sent and received
        await asyncio.gather(*writers, *readers)
        last_seen = max(seen)
        await asyncio.to_thread(hub.start)

    history = await _history(hub.base_url, sid, tok)
    by_seq = {event["seq"]: event for event in history}
    assert sorted(by_seq) == list(range(1, max(by_seq) + 1)), "the history has a gap"
    missing = [seq for seq in seen if seq not in by_seq]
    assert not missing, f"events a client saw are gone after kill -9: {missing[:10]}"
    assert all(by_seq[seq] == frame for seq, frame in seen.items())
    assert len(seen) >= ROUNDS * 10  # distinct events (each was seen by three clients)
