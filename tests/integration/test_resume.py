"""Resume across restarts of a real hub (issue 3, docs/protocol.md section 4): restarts keep
the epoch as they should, and the Python client rides through them. The resume rules
(replay, resync, re-authentication): tests/inproc/test_resume.py."""

from __future__ import annotations

import asyncio

import pytest

from companion_ws.client import CompanionClient
from tests.support.frames import Frame, eventually, frames_until, is_, say, seqs
from tests.support.hub import HubFactory, token
from tests.support.ws import connect


# Needs a process: SIGTERM and SIGKILL of the hub and restarts, with CompanionClient reconnecting.
@pytest.mark.every_store
async def test_restarts_keep_the_epoch_after_a_clean_shutdown_and_after_a_crash(
    hub_factory: HubFactory,
) -> None:
    """SIGTERM and SIGKILL alike: every event a client saw was committed before it was
    sent (durable before visible, docs/protocol.md v1.1), so the epoch is kept and a resume
    replays from the restored history, with no snapshot."""
    hub = hub_factory().start()
    url = hub.ws_url
    b = await connect(url, token("alice"))
    sid, epoch = b.welcome["session_id"], b.welcome["epoch"]
    await b.request({"type": "update_session_state", "patch": {"step": "quotes"}})
    echoes = [await say(b, f"before-{i}") for i in range(5)]
    last = echoes[1]["seq"]
    client = CompanionClient(url, token=token("alice"), session_id=sid, backoff_max=0.3)
    stream = client.events()
    await client.start()
    seen = client.seq

    await asyncio.to_thread(hub.stop)  # SIGTERM: a graceful shutdown
    await asyncio.to_thread(hub.start)
    a = await connect(url, token("alice"), session_id=sid, last_seq=last, epoch=epoch)
    assert a.welcome["epoch"] == epoch and a.welcome["resumed"] is True
    *replay, resumed = await frames_until(a, is_("resumed"))
    assert seqs(replay) == list(range(last + 1, resumed["to_seq"] + 1))
    assert [f for f in replay if f.get("text", "").startswith("before-")] == echoes[2:]
    # the client rode through the restart the same way: a replay, no snapshot
    async with asyncio.timeout(20):
        got: list[Frame] = []
        async for frame in stream:
            got.append(frame)
            if frame["type"] == "resumed":
                break
    marks = [
        f["type"] for f in got if f["type"] in ("session_joined", "resumed", "resync_required")
    ]
    assert marks == ["session_joined", "session_joined", "resumed"]
    assert got[-1]["from_seq"] >= seen and client.epoch == epoch
    marker = await say(a, "after-clean-restart")
    assert marker["seq"] > resumed["to_seq"]
    await eventually(lambda: client.seq >= marker["seq"])
    assert client.seq == marker["seq"]

    hub.kill()  # SIGKILL
    await asyncio.to_thread(hub.start)
    a3 = await connect(url, token("alice"), session_id=sid, last_seq=last, epoch=epoch)
    assert a3.welcome["epoch"] == epoch and a3.welcome["resumed"] is True
    *replay, resumed = await frames_until(a3, is_("resumed"))
    assert seqs(replay) == list(range(last + 1, resumed["to_seq"] + 1))
    assert marker in replay  # the last event anyone saw before the crash
    await eventually(lambda: client.connected and client.reconnects >= 2)
    change = await a3.request({"type": "update_session_state", "patch": {"step": "label"}})
    assert change["seq"] > marker["seq"]  # no number is reused
    await eventually(lambda: client.seq >= change["seq"])
    assert client.state == {"step": "label"} and client.version == change["version"]
    assert client.epoch == epoch
    await client.close()
    assert "resync_required" not in [f["type"] async for f in stream]
    await a3.close()
