"""Several hub processes as one (issue 4): two or three real hubs on one PostgreSQL
database and one Redis. Clients of one session on different processes get every
broadcast in one seq order; state written through one process is read through another;
a killed process's clients resume elsewhere without loss and are announced as gone; a
Redis restart fails publishes loudly, half-applies none, and heals without a restart."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis.asyncio as aioredis
import websockets

from tests.support.cluster import Cluster
from tests.support.hub import REDIS_CLUSTER_URL, HubProcess, token
from tests.support.ws import WS, connect

pytestmark = [pytest.mark.postgres, pytest.mark.redis]

Frame = dict[str, Any]
PRESENCE_TTL = "3"  # a dead process's clients leave within about this many seconds
UNSEQ = {"session_joined", "session_state", "resync_required", "resumed", "history", "presence"}


class Client:
    """A connected client that records every frame it gets, in a background task."""

    def __init__(self, ws: WS, hub: HubProcess) -> None:
        self.ws = ws
        self.hub = hub
        self.frames: list[Frame] = []
        self._reader = asyncio.create_task(self._read())

    @classmethod
    async def join(cls, hub: HubProcess, session_id: str | None = None, **params: Any) -> Client:
        ws = await connect(hub.ws_url, token("alice"), session_id=session_id, **params)
        return cls(ws, hub)

    async def _read(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in self.ws.conn:
                self.frames.append(json.loads(raw))

    @property
    def id(self) -> str:
        return str(self.ws.welcome["connection_id"])

    def broadcasts(self) -> list[Frame]:
        return [f for f in self.frames if "seq" in f and f["type"] not in UNSEQ]

    def said(self, marker: str) -> list[Frame]:
        return [f for f in self.frames if f["type"] == "contextual_update" and f["text"] == marker]

    async def say(self, marker: str, n: int) -> None:
        await self.ws.send({"type": "contextual_update", "text": marker, "data": {"n": n}})

    async def ask(self, frame: Frame, timeout: float = 10.0) -> Frame:
        """Send with a requestId; the first frame carrying it back (reply or error)."""
        rid = f"r{len(self.frames)}-{id(frame)}-{asyncio.get_running_loop().time()}"
        await self.ws.send({**frame, "requestId": rid})
        await eventually(lambda: any(f.get("requestId") == rid for f in self.frames), timeout)
        return next(f for f in self.frames if f.get("requestId") == rid)

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


async def eventually(predicate: Callable[[], bool], timeout: float = 20.0) -> None:
    """Wait until ``predicate()`` holds (a bound on waiting, never on speed)."""
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


def said_all(client: Client, senders: int, total: int) -> bool:
    return sum(len(client.said(f"from-{i}")) for i in range(senders)) == total


async def ready(hub: HubProcess) -> httpx.Response:
    async with httpx.AsyncClient(base_url=hub.base_url, timeout=10) as http:
        return await http.get("/readyz")


def said(client: Client, marker: str, count: int) -> bool:
    return len(client.said(marker)) == count


def assert_gap_free(frames: list[Frame]) -> list[int]:
    seqs = [f["seq"] for f in frames]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
    return seqs


def cluster_of(tmp_path: Path, size: int, broker: str = "redis") -> Iterator[Cluster]:
    cluster = Cluster(
        tmp_path,
        size=size,
        env={"COMPANION_PRESENCE_TTL": PRESENCE_TTL},
        broker_url=REDIS_CLUSTER_URL if broker == "cluster" else "",
    )
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def three(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    """Three hubs for the tests that neither kill nor restart anything (on the test
    Redis Cluster when a test asks with ``parametrize("three", ["cluster"], indirect=True)``)."""
    broker = getattr(request, "param", "redis")
    yield from cluster_of(tmp_path_factory.mktemp(f"cluster3-{broker}"), 3, broker)


@pytest.fixture
def broker() -> str:
    """A Redis of the cluster's own; the tests that matter most also run on the test
    Redis Cluster (``parametrize("broker", ON_BOTH)``, docs/protocol.md section 18)."""
    return "redis"


ON_BOTH = ["redis", "cluster"]


@pytest.fixture
def two(tmp_path: Path, broker: str) -> Iterator[Cluster]:
    yield from cluster_of(tmp_path, 2, broker)


async def test_every_client_on_every_process_gets_every_broadcast_in_one_order(
    three: Cluster, clients: list[Client]
) -> None:
    await one_order(three, clients)


@pytest.mark.parametrize("three", ["cluster"], indirect=True)
async def test_on_a_redis_cluster_every_client_gets_every_broadcast_in_one_order(
    three: Cluster, clients: list[Client]
) -> None:
    await one_order(three, clients)


async def one_order(three: Cluster, clients: list[Client]) -> None:
    """Seven clients over three processes, each publishing at once: every client gets
    every broadcast, gap-free, in one order, each sender's in its own order."""
    first = await Client.join(three.hubs[0])
    sid = first.ws.welcome["session_id"]
    clients.append(first)
    for hub in (*three.hubs, *three.hubs[1:]):  # 6 clients: 2 per process
        clients.append(await Client.join(hub, sid))
    last_join = clients[-1].ws.welcome["seq"] + 1  # the last client's client_joined

    per_client = 25

    async def burst(i: int, c: Client) -> None:
        for n in range(per_client):
            await c.say(f"from-{i}", n)

    # concurrent publishers on every process
    await asyncio.gather(*(burst(i, c) for i, c in enumerate(clients)))
    total = per_client * len(clients)
    for c in clients:
        await eventually(functools.partial(said_all, c, len(clients), total))

    reference: list[tuple[Any, ...]] | None = None
    for c in clients:
        frames = c.broadcasts()
        assert_gap_free(frames)  # no gap, no repeat, from the client's own join on
        common = [
            (f["seq"], f["type"], f.get("text"), f.get("data"), f.get("sender"))
            for f in frames
            if f["seq"] >= last_join
        ]
        if reference is None:
            reference = common
        assert common == reference  # one order for everyone on every process
        for i, sender in enumerate(clients):  # each sender's messages in its own order
            assert [f["data"]["n"] for f in c.said(f"from-{i}")] == list(range(per_client))
            assert {f["sender"] for f in c.said(f"from-{i}")} == {sender.id}


async def test_state_written_through_one_process_is_read_through_another(
    three: Cluster, clients: list[Client]
) -> None:
    writer = await Client.join(three.hubs[0])
    sid = writer.ws.welcome["session_id"]
    reader = await Client.join(three.hubs[1], sid)
    third = await Client.join(three.hubs[2], sid)
    clients.extend([writer, reader, third])

    reply = await writer.ask(
        {"type": "update_session_state", "patch": {"shipping_details": {"from": "90210"}}}
    )
    assert reply["type"] == "session_state_updated" and reply["version"] == 1
    await eventually(lambda: any(f["type"] == "session_state_updated" for f in reader.frames))

    state = await third.ask({"type": "get_session_state"})
    assert state["type"] == "session_state" and state["version"] == 1
    assert state["state"]["shipping_details"] == {"from": "90210"}
    assert state["seq"] >= reply["seq"]

    auth = {"Authorization": f"Bearer {token('alice')}"}
    admin = {"Authorization": f"Bearer {token('root', admin=True)}"}
    async with httpx.AsyncClient(base_url=three.hubs[2].base_url, headers=auth) as http:
        over_http = (await http.get(f"/sessions/{sid}/state")).json()
        assert over_http["state"]["shipping_details"] == {"from": "90210"}
        patched = await http.patch(
            f"/sessions/{sid}/state",
            json={"shipping_details": {"to": "10001"}},
            headers={"If-Match": "1"},
        )
        assert patched.status_code == 200, patched.text
    await eventually(
        lambda: any(f.get("version") == 2 for f in writer.frames if "seq" in f)
    )  # written through process 3 over HTTP, broadcast to process 1's client
    again = await reader.ask({"type": "get_session_state"})
    assert again["state"]["shipping_details"] == {"from": "90210", "to": "10001"}

    presence = await reader.ask({"type": "get_presence"})  # every process's clients
    assert {m["connection_id"] for m in presence["clients"]} == {c.id for c in clients}
    async with httpx.AsyncClient(base_url=three.hubs[0].base_url, headers=admin) as http:
        listing = (await http.get("/sessions", params={"limit": 500})).json()
    [row] = [s for s in listing["sessions"] if s["session_id"] == sid]
    assert row["connections"] == 3


@pytest.mark.parametrize("broker", ON_BOTH)
async def test_after_sigkill_its_clients_resume_on_another_process_and_miss_nothing(
    two: Cluster, clients: list[Client]
) -> None:
    victim_hub, survivor_hub = two.hubs
    victim = await Client.join(victim_hub)
    sid = victim.ws.welcome["session_id"]
    epoch = victim.ws.welcome["epoch"]
    observer = await Client.join(survivor_hub, sid)
    clients.extend([victim, observer])
    for n in range(10):
        await observer.say("before", n)
    await eventually(lambda: len(victim.said("before")) == 10)

    stop = asyncio.Event()

    async def keep_publishing() -> int:
        n = 0
        while not stop.is_set():
            await observer.say("during", n)
            n += 1
            await asyncio.sleep(0.01)
        return n

    publisher = asyncio.create_task(keep_publishing())
    await eventually(lambda: len(victim.said("during")) >= 5)
    victim_hub.kill()  # SIGKILL: no goodbye, no client_left from it
    await eventually(lambda: victim.ws.conn.close_code is not None or victim._reader.done())
    last_seq = victim.broadcasts()[-1]["seq"]

    back = await Client.join(survivor_hub, sid, last_seq=last_seq, epoch=epoch)
    clients.append(back)
    assert back.ws.welcome["resumed"] is True and back.ws.welcome["epoch"] == epoch
    await eventually(lambda: any(f["type"] == "resumed" for f in back.frames))
    await asyncio.sleep(0.3)
    stop.set()
    sent = await publisher
    await observer.say("after", 0)
    await eventually(lambda: len(back.said("after")) == 1)

    before_kill = [f for f in victim.broadcasts() if f["seq"] <= last_seq]
    after = back.broadcasts()
    assert after[0]["seq"] == last_seq + 1  # replayed from exactly where it was
    assert_gap_free(before_kill + after)  # nothing lost, nothing twice
    said = [f["data"]["n"] for f in before_kill + after if f.get("text") == "during"]
    assert said == list(range(sent))
    assert not any(f["type"] == "resync_required" for f in back.frames)

    # the survivor announces the dead process's client, in the same seq order for all
    await eventually(
        lambda: any(
            f["type"] == "client_left" and f["connection_id"] == victim.id for f in observer.frames
        ),
        timeout=30,
    )
    await eventually(
        lambda: any(
            f["type"] == "client_left" and f["connection_id"] == victim.id for f in back.frames
        )
    )
    presence = await observer.ask({"type": "get_presence"})
    assert {m["connection_id"] for m in presence["clients"]} == {observer.id, back.id}
    assert_gap_free(back.broadcasts())


async def test_a_redis_restart_fails_publishes_loudly_and_heals_without_a_restart(
    two: Cluster, clients: list[Client]
) -> None:
    assert two.redis is not None
    a = await Client.join(two.hubs[0])
    sid = a.ws.welcome["session_id"]
    b = await Client.join(two.hubs[1], sid)
    clients.extend([a, b])
    for n in range(5):
        await a.say("before", n)
    await eventually(lambda: len(b.said("before")) == 5)
    old_epoch = b.ws.welcome["epoch"]
    last_seq = b.broadcasts()[-1]["seq"]

    two.redis.kill()  # every key gone: counters, streams, presence
    for c in (a, b):
        lost = await c.ask({"type": "contextual_update", "text": "lost", "data": None})
        assert lost["type"] == "error" and lost["code"] == "internal"
        assert lost["retryable"] is True
    changed = await a.ask({"type": "update_session_state", "patch": {"note": "during"}})
    assert changed["type"] == "error" and changed["code"] == "internal"
    for hub in two.hubs:
        down = await ready(hub)
        assert down.status_code == 503 and down.json()["broker"] is False

    await asyncio.to_thread(two.redis.start)  # same port, empty
    for hub in two.hubs:
        async with asyncio.timeout(20):  # the subscriber reconnects by itself
            while (await ready(hub)).status_code != 200:  # noqa: ASYNC110
                await asyncio.sleep(0.1)

    # every process delivers again; the numbering goes on after the last event
    await a.say("after", 0)
    await b.say("after", 1)
    for c in (a, b):
        await eventually(functools.partial(said, c, "after", 2))
        frames = c.broadcasts()
        assert_gap_free(frames)
        assert [f["seq"] for f in c.said("after")] == [last_seq + 1, last_seq + 2]
        assert not c.said("lost")  # a failed publish never shows up later

    # the committed state change is there on every process; its broadcast failed
    for c in (a, b):
        state = await c.ask({"type": "get_session_state"})
        assert state["state"]["note"] == "during" and state["version"] == 1
    assert not any(f["type"] == "session_state_updated" for f in a.frames + b.frames)

    # presence is rebuilt by the heartbeats
    await eventually_presence(b, {a.id, b.id})

    # the lost history got a new epoch: a resume under the old one is a resync, never
    # a silent gap
    late = await Client.join(two.hubs[0], sid, last_seq=last_seq, epoch=old_epoch)
    clients.append(late)
    assert late.ws.welcome["epoch"] != old_epoch and late.ws.welcome["resumed"] is False
    await eventually(lambda: any(f["type"] == "resync_required" for f in late.frames))
    [resync] = [f for f in late.frames if f["type"] == "resync_required"]
    assert resync["state"]["note"] == "during"


async def eventually_presence(client: Client, expected: set[str]) -> None:
    async with asyncio.timeout(20):
        while True:
            presence = await client.ask({"type": "get_presence"})
            if {m["connection_id"] for m in presence["clients"]} >= expected:
                return
            await asyncio.sleep(0.2)


async def test_a_process_subscribes_only_while_it_has_clients_of_the_session(
    three: Cluster, clients: list[Client]
) -> None:
    assert three.redis is not None
    redis = aioredis.Redis.from_url(three.redis.url)

    async def subscribers(sid: str) -> int:
        [(_, count)] = await redis.pubsub_numsub(f"cw:{{{sid}}}")
        return int(count)

    async def until(sid: str, count: int) -> None:
        async with asyncio.timeout(20):
            while await subscribers(sid) != count:  # noqa: ASYNC110
                await asyncio.sleep(0.05)

    try:
        a = await Client.join(three.hubs[0])
        sid = a.ws.welcome["session_id"]
        b = await Client.join(three.hubs[1], sid)
        c = await Client.join(three.hubs[1], sid)
        clients.extend([a, b, c])
        await until(sid, 2)  # one subscription per process with clients; none on hub 3
        await b.close()
        await c.say("still-here", 0)
        await eventually(functools.partial(said, a, "still-here", 1))
        assert await subscribers(sid) == 2
        await c.close()
        await until(sid, 1)  # hub 2's last client left
        ended = await a.ask({"type": "end_session"})
        assert ended["type"] == "session_ended"
        await until(sid, 0)  # and an ended session leaves no subscription behind
    finally:
        await redis.aclose()


async def test_history_through_a_survivor_has_no_hole_after_a_process_died(
    two: Cluster, clients: list[Client]
) -> None:
    victim_hub, survivor_hub = two.hubs
    victim = await Client.join(victim_hub)
    sid = victim.ws.welcome["session_id"]
    observer = await Client.join(survivor_hub, sid)
    clients.extend([victim, observer])
    victim_hub.kill()
    await eventually(lambda: any(f["type"] == "client_left" for f in observer.frames), timeout=30)
    await observer.say("after", 0)
    await eventually(functools.partial(said, observer, "after", 1))
    history = await observer.ask({"type": "get_history", "after_seq": 0, "limit": 100})
    assert history["type"] == "history"
    assert_gap_free(history["events"])


async def test_a_live_client_never_gets_a_silent_gap_when_redis_loses_its_keys(
    tmp_path: Path, clients: list[Client]
) -> None:
    # the event log lags: nothing is flushed while Redis dies
    env = {"COMPANION_PRESENCE_TTL": PRESENCE_TTL, "COMPANION_EVENT_FLUSH_INTERVAL": "60"}
    cluster = await asyncio.to_thread(Cluster(tmp_path, size=2, env=env).start)
    try:
        assert cluster.redis is not None
        a = await Client.join(cluster.hubs[0])
        sid = a.ws.welcome["session_id"]
        clients.append(a)
        for n in range(5):
            await a.say("before", n)
        await eventually(functools.partial(said, a, "before", 5))
        await asyncio.to_thread(cluster.redis.restart)
        async with httpx.AsyncClient(  # a backend, through the process without clients
            base_url=cluster.hubs[1].base_url,
            headers={"Authorization": f"Bearer {token('alice')}"},
        ) as http:
            async with asyncio.timeout(20):
                while (await http.get("/readyz")).status_code != 200:  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
            posted = await http.post(f"/sessions/{sid}/events", json={"text": "after"})
        assert posted.status_code == 201, posted.text
        await eventually(
            lambda: bool(a.said("after")) or any(f["type"] == "resync_required" for f in a.frames),
            timeout=10,
        )
    finally:
        await asyncio.to_thread(cluster.close)
