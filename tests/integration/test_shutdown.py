"""Graceful shutdown: SIGTERM closes every client with 1012, exits 0, and leaves every
committed state and the whole event log on disk for the next start."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import uuid

import httpx
import pytest

from tests.support.hub import HubFactory, token
from tests.support.ws import WS, connect


@pytest.mark.every_store
async def test_sigterm_closes_clients_1012_and_keeps_everything(hub_factory: HubFactory) -> None:
    hub = hub_factory().start()
    sessions: list[tuple[str, str, list[WS]]] = []
    for s in range(3):
        user = f"u-{uuid.uuid4().hex[:8]}"
        a = await connect(hub.ws_url, token(user))
        sid = a.welcome["session_id"]
        b = await connect(hub.ws_url, token(user), session_id=sid, client="agent")
        for n in range(10):
            reply = await a.request({"type": "update_session_state", "key": f"k{n}", "value": s})
            assert reply["type"] == "session_state_updated"
        reply = await b.request({"type": "contextual_update", "text": "last", "data": {"s": s}})
        sessions.append((user, sid, [a, b]))
    last_seqs = {
        sid: (await clients[0].request({"type": "get_session_state"}))["seq"]
        for _, sid, clients in sessions
    }

    hub.signal(signal.SIGTERM)
    for _, _, clients in sessions:
        for ws in clients:
            code, _ = await ws.closed(timeout=10)
            assert code == 1012
    assert hub.wait(timeout=10) == 0

    hub.start()
    async with httpx.AsyncClient(base_url=hub.base_url) as http:
        for s, (user, sid, _) in enumerate(sessions):
            headers = {"Authorization": f"Bearer {token(user)}"}
            state = (await http.get(f"/sessions/{sid}/state", headers=headers)).json()
            assert state == {"state": {f"k{n}": s for n in range(10)}, "version": 10}
            history = (
                await http.get(f"/sessions/{sid}/history", params={"limit": 1000}, headers=headers)
            ).json()
            events = history["events"]
            seqs = [e["seq"] for e in events]
            # Two joins, ten updates, one contextual update, and everything after the
            # signal (the clients leaving): nothing lost, nothing twice.
            assert seqs == list(range(1, len(seqs) + 1))
            assert seqs[-1] >= last_seqs[sid] == 13
            kinds = [e["type"] for e in events[:13]]
            assert kinds == ["client_joined"] * 2 + ["session_state_updated"] * 10 + [
                "contextual_update"
            ]
            assert events[12]["data"] == {"s": s}
            assert [e["version"] for e in events[2:12]] == list(range(1, 11))
            # A reconnect continues the same history.
            again = await connect(hub.ws_url, token(user), session_id=sid)
            assert again.welcome["created"] is False and again.welcome["seq"] == seqs[-1]
            assert again.welcome["state_version"] == 10
            await again.close()


@pytest.mark.every_store
async def test_sigterm_in_the_middle_of_writes_never_hangs(hub_factory: HubFactory) -> None:
    """SIGTERM while the event log is writing a batch: the writer finishes it instead of
    being cancelled half-way (which could leave the SQLite driver waiting forever), so
    every round exits 0 and the history stays gap-free. Several rounds, since the
    signal must land at a different point of a batch each time."""
    hub = hub_factory()
    user = f"u-{uuid.uuid4().hex[:8]}"
    sid: str | None = None
    for round_ in range(6):
        hub.start()
        ws = await connect(hub.ws_url, token(user), session_id=sid)
        sid = ws.welcome["session_id"]
        for n in range(150):  # not awaited: the hub is busy writing when the signal lands
            await ws.send({"type": "contextual_update", "text": f"r{round_} n{n}"})
        await asyncio.sleep(0.01 * round_)
        hub.signal(signal.SIGTERM)
        try:
            code = hub.wait(timeout=15)
        except subprocess.TimeoutExpired:
            pytest.fail(f"round {round_}: the hub hung after SIGTERM; see {hub.log_path}")
        assert code == 0
        await ws.closed(timeout=10)

    hub.start()
    async with httpx.AsyncClient(base_url=hub.base_url) as http:
        headers = {"Authorization": f"Bearer {token(user)}"}
        history = (
            await http.get(f"/sessions/{sid}/history", params={"limit": 1000}, headers=headers)
        ).json()
    seqs = [e["seq"] for e in history["events"]]
    assert seqs == list(range(1, len(seqs) + 1))


# Needs a process: Ctrl-C is a SIGINT to `companion-ws serve`, and its exit and stderr.
async def test_ctrl_c_stops_serve_cleanly_with_no_traceback(hub_factory: HubFactory) -> None:
    hub = hub_factory()
    hub.start()
    ws = await connect(hub.ws_url, token("alice"))
    hub.signal(signal.SIGINT)
    assert (await ws.closed(timeout=15))[0] == 1012
    assert await asyncio.to_thread(hub.wait, 15) == 0
    assert hub.log_path is not None
    log = hub.log_path.read_text()
    assert "Traceback" not in log and "KeyboardInterrupt" not in log, log[-2000:]
