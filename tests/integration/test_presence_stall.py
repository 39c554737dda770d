"""Presence tells the truth (docs/protocol.md section 4, issue 23): two real hubs on
Redis + PostgreSQL with a short presence TTL. A hub paused past the TTL (SIGSTOP, as a
GC pause or a VM migration) has its clients announced ``client_left`` by the other; when
it wakes it closes those connections 1012, they come back as new, announced connections,
and ``get_presence`` equals the open connections. A killed hub's entries are gone within
the TTL and a heartbeat."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Iterator

import pytest

from tests.support.cluster import Cluster
from tests.support.frames import is_
from tests.support.hub import token
from tests.support.ws import WS, connect

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

TTL = 1.0  # COMPANION_PRESENCE_TTL here: the heartbeat runs every TTL / 3


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(
        tmp_path_factory.mktemp("stall"), size=2, env={"COMPANION_PRESENCE_TTL": str(TTL)}
    )
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.close()


async def present(ws: WS) -> set[str]:
    reply = await ws.request({"type": "get_presence"})
    return {m["connection_id"] for m in reply["clients"]}


async def announced_gone(ws: WS, connection_id: str) -> list[dict[str, object]]:
    """The session's ``client_left`` events for ``connection_id``, from its history
    (a request skips the live frames before its answer)."""
    history = await ws.request({"type": "get_history", "after_seq": 0, "limit": 100})
    return [
        e
        for e in history["events"]
        if e["type"] == "client_left" and e["connection_id"] == connection_id
    ]


async def test_a_stalled_process_closes_what_was_announced_gone_and_presence_heals(
    pair: Cluster,
) -> None:
    stalled_hub, other_hub = pair.hubs
    victim = await connect(stalled_hub.ws_url, token("alice"))
    sid, epoch = victim.welcome["session_id"], victim.welcome["epoch"]
    observer = await connect(other_hub.ws_url, token("alice"), session_id=sid)
    try:
        assert await present(observer) == {
            victim.welcome["connection_id"],
            observer.welcome["connection_id"],
        }
        stalled_hub.signal(signal.SIGSTOP)
        try:
            # the other hub reaps the stalled hub's entry and announces it gone
            await observer.recv_until(
                is_("client_left", connection_id=victim.welcome["connection_id"]),
                timeout=TTL * 6,
            )
        finally:
            stalled_hub.signal(signal.SIGCONT)
        # awake, the stalled hub cannot leave that connection open as if nothing
        # happened: it closes it with a code that makes clients reconnect and resume
        code, _ = await victim.closed(timeout=TTL * 6)
        assert code == 1012
        last_seq = (await observer.request({"type": "get_session_state"}))["seq"]
        back = await connect(
            stalled_hub.ws_url, token("alice"), session_id=sid, last_seq=last_seq, epoch=epoch
        )
        try:
            assert back.welcome["resumed"] is True
            await observer.recv_until(
                is_("client_joined", connection_id=back.welcome["connection_id"]), timeout=5
            )
            await asyncio.sleep(TTL * 1.5)  # past the TTL: nothing stale is left
            expected = {back.welcome["connection_id"], observer.welcome["connection_id"]}
            assert await present(observer) == expected
            assert await present(back) == expected
            # the stalled connection was announced gone once, by the other hub
            assert len(await announced_gone(back, victim.welcome["connection_id"])) == 1
        finally:
            await back.close()
    finally:
        await observer.close()


async def test_a_killed_processs_entries_are_gone_within_the_ttl(pair: Cluster) -> None:
    """Runs last in this module: it kills the first hub."""
    victim_hub, other_hub = pair.hubs
    victim = await connect(victim_hub.ws_url, token("alice"))
    sid = victim.welcome["session_id"]
    observer = await connect(other_hub.ws_url, token("alice"), session_id=sid)
    try:
        mine = observer.welcome["connection_id"]
        assert await present(observer) == {victim.welcome["connection_id"], mine}
        victim_hub.kill()
        killed_at = time.monotonic()
        while await present(observer) != {mine}:
            # the TTL and a heartbeat (1.33 s here), with room for a loaded machine
            assert time.monotonic() - killed_at < TTL * 3, "a ghost outlived the TTL"
            await asyncio.sleep(0.05)
        # and announced gone (the publish follows the reaping), once
        while not await announced_gone(observer, victim.welcome["connection_id"]):
            assert time.monotonic() - killed_at < TTL * 6, "never announced gone"
            await asyncio.sleep(0.05)
        assert len(await announced_gone(observer, victim.welcome["connection_id"])) == 1
    finally:
        await observer.close()
