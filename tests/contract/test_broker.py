"""The Broker and Presence contracts: one suite, run against the in-memory broker, the
Redis broker on one Redis, and the Redis broker on a Redis Cluster.

No server: the broker API is called directly, with a fake seed loader (the database's
answer) and handlers that record what they are handed (events, and leaves). The Redis
runs use the test Redis (``COMPANION_TEST_REDIS``) or the test cluster
(``COMPANION_TEST_REDIS_CLUSTER``, started by scripts/test.sh) under a key prefix of
their own, deleted afterwards.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import pytest
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import ConnectionError as RedisConnectionError

from companion_ws.broker.base import Broker
from companion_ws.broker.memory import MemoryBroker
from companion_ws.broker.redis import RedisBroker, RedisPresence
from companion_ws.protocol.codec import encode, with_seq
from companion_ws.protocol.frames import ContextualUpdate
from companion_ws.values import Event, Leave, Seed
from tests.support.hub import REDIS_CLUSTER_URL, REDIS_URL, free_port


class Seeds:
    """The seed loader: what the database would say about each session."""

    def __init__(self) -> None:
        self.known: dict[str, Seed] = {}
        self.calls: list[str] = []

    async def __call__(self, session_id: str) -> Seed:
        self.calls.append(session_id)
        return self.known.get(session_id, Seed(0, "db-epoch"))


class Recorder:
    """The event handler (called) and the leave handler (``leave``)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.leaves: list[Leave] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)

    def leave(self, leave: Leave) -> None:
        self.leaves.append(leave)

    def of(self, session_id: str) -> list[Event]:
        return [e for e in self.events if e.session_id == session_id]

    async def wait(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Until ``predicate`` holds (a bound against hanging, not a speed check)."""
        async with asyncio.timeout(timeout):
            while not predicate():  # noqa: ASYNC110
                await asyncio.sleep(0.005)


class Started(Protocol):
    async def __call__(self, **options: Any) -> tuple[Broker, Recorder, Seeds]: ...


URLS = {"redis": REDIS_URL, "cluster": REDIS_CLUSTER_URL}


@pytest.fixture(
    params=[
        "memory",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("cluster", marks=pytest.mark.redis),
    ]
)
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(
    params=[
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("cluster", marks=pytest.mark.redis),
    ]
)
def redis_kind(request: pytest.FixtureRequest) -> str:
    """The cross-process tests: on one Redis and on a Redis Cluster."""
    return str(request.param)


def client_for(kind: str) -> aioredis.Redis | RedisCluster:
    if kind == "cluster":
        host, port = REDIS_CLUSTER_URL.removeprefix("redis+cluster://").split(",")[0].split(":")
        return RedisCluster(host=host, port=int(port))
    return aioredis.Redis.from_url(REDIS_URL)


async def node_clients(client: aioredis.Redis | RedisCluster) -> list[aioredis.Redis]:
    """A client of each Redis server behind ``client`` (each primary of a cluster)."""
    if isinstance(client, RedisCluster):
        await client.initialize()
        return [aioredis.Redis(host=n.host, port=int(n.port)) for n in client.get_primaries()]
    return [aioredis.Redis(connection_pool=client.connection_pool)]


@pytest.fixture
def prefix() -> str:
    return f"cwtest-{uuid.uuid4().hex[:10]}"


async def delete_keys(kind: str, prefix: str) -> None:
    client = client_for(kind)
    try:
        keys = [key async for key in client.scan_iter(match=f"{prefix}:*", count=1000)]
        for key in keys:  # one by one: on a cluster they are on several shards
            await client.delete(key)
    finally:
        await client.aclose()


@pytest.fixture
async def redis_client(redis_kind: str) -> AsyncIterator[Any]:
    client = client_for(redis_kind)
    yield client
    await client.aclose()


def _starter(kind: str, prefix: str) -> tuple[Started, list[Broker]]:
    brokers: list[Broker] = []

    async def make(**options: Any) -> tuple[Broker, Recorder, Seeds]:
        size = options.pop("history_size", 100)
        broker: Broker
        if kind == "memory":
            broker = MemoryBroker(history_size=size, **options)
        else:
            broker = RedisBroker(URLS[kind], history_size=size, prefix=prefix, **options)
        recorder, seeds = Recorder(), Seeds()
        await broker.start(recorder, seeds, recorder.leave)
        brokers.append(broker)
        return broker, recorder, seeds

    return make, brokers


@pytest.fixture
async def start(kind: str, prefix: str) -> AsyncIterator[Started]:
    """Start a broker of this run's kind (the Redis run deletes its keys after)."""
    make, brokers = _starter(kind, prefix)
    yield make
    for broker in brokers:
        await broker.close()
    if kind != "memory":
        await delete_keys(kind, prefix)


@pytest.fixture
async def start_redis(redis_kind: str, prefix: str) -> AsyncIterator[Started]:
    """Redis brokers sharing a prefix, as the processes of one deployment share a Redis
    (or a Redis Cluster): the cross-process part of the contract."""
    make, brokers = _starter(redis_kind, prefix)
    yield make
    for broker in brokers:
        await broker.close()
    await delete_keys(redis_kind, prefix)


def body(session_id: str, n: int) -> bytes:
    return encode(ContextualUpdate(session_id=session_id, text="t", data={"n": n}))


def sid() -> str:
    return uuid.uuid4().hex


# ---------------------------------------------------------------- ordering


async def test_concurrent_publishes_get_seq_1_to_n_and_arrive_in_seq_order(
    start: Started,
) -> None:
    broker, recorder, _ = await start()
    s = sid()
    await broker.subscribe(s)
    bodies = [body(s, i) for i in range(200)]
    events = await asyncio.gather(*(broker.publish(s, "contextual_update", b) for b in bodies))
    assert sorted(e.seq for e in events) == list(range(1, 201))
    assert len({e.epoch for e in events}) == 1
    for event, raw in zip(events, bodies, strict=True):
        assert event.payload == with_seq(raw, event.seq)
    await recorder.wait(lambda: len(recorder.of(s)) >= 200)
    delivered = recorder.of(s)
    assert [e.seq for e in delivered] == list(range(1, 201))
    by_seq = {e.seq: e for e in events}
    assert all(e == by_seq[e.seq] for e in delivered)


@pytest.mark.redis
async def test_two_processes_publishing_at_once_see_one_order(start_redis: Started) -> None:
    (a, rec_a, _), (b, rec_b, _) = await start_redis(), await start_redis()
    s = sid()
    await a.subscribe(s)
    await b.subscribe(s)

    async def burst(broker: Broker, tag: int) -> list[Event]:
        return [
            await broker.publish(s, "contextual_update", body(s, tag * 1000 + i))
            for i in range(100)
        ]

    sent = await asyncio.gather(burst(a, 1), burst(b, 2))
    assert sorted(e.seq for batch in sent for e in batch) == list(range(1, 201))
    await rec_a.wait(lambda: len(rec_a.of(s)) >= 200)
    await rec_b.wait(lambda: len(rec_b.of(s)) >= 200)
    assert [e.seq for e in rec_a.of(s)] == list(range(1, 201))
    assert rec_a.of(s) == rec_b.of(s)


# ---------------------------------------------------------------- history


async def test_history_keeps_a_window_and_says_when_a_seq_is_outside_it(
    start: Started,
) -> None:
    broker, _, _ = await start(history_size=10)
    s = sid()
    published = [await broker.publish(s, "contextual_update", body(s, i)) for i in range(25)]

    inside = await broker.history(s, 15, 100)  # the oldest seq kept is 16: 15 is the edge
    assert inside.available
    assert list(inside.events) == published[15:]
    assert inside.position.seq == 25 and inside.position.epoch == published[0].epoch

    assert [e.seq for e in (await broker.history(s, 20, 3)).events] == [21, 22, 23]

    too_old = await broker.history(s, 14, 100)
    assert not too_old.available and not too_old.events

    current = await broker.history(s, 25, 100)
    assert current.available and not current.events

    ahead = await broker.history(s, 26, 100)
    assert not ahead.available and ahead.position.seq == 25


async def test_a_new_session_starts_empty(start: Started) -> None:
    broker, _, seeds = await start()
    s = sid()
    position = await broker.position(s)
    assert position.seq == 0 and position.epoch
    assert (await broker.history(s, 0, 10)).available
    assert not (await broker.history(s, 1, 10)).available
    assert seeds.calls == [s]


# ---------------------------------------------------------------- epoch and seed


async def test_the_epoch_is_stable_while_the_history_lives(start: Started) -> None:
    broker, _, seeds = await start()
    s = sid()
    first = await broker.publish(s, "contextual_update", body(s, 1))
    again = await broker.publish(s, "contextual_update", body(s, 2))
    assert first.epoch == again.epoch == (await broker.position(s)).epoch
    assert (await broker.history(s, 0, 10)).position.epoch == first.epoch
    assert seeds.calls == [s]


async def test_a_fresh_broker_continues_after_the_seeded_seq(start: Started, kind: str) -> None:
    broker, recorder, seeds = await start()
    s = sid()
    seeds.known[s] = Seed(41, "persisted")
    await broker.subscribe(s)
    event = await broker.publish(s, "contextual_update", body(s, 1))
    assert event.seq == 42
    assert json.loads(event.payload)["seq"] == 42
    assert (await broker.position(s)).seq == 42
    await recorder.wait(lambda: bool(recorder.of(s)))
    assert recorder.of(s) == [event]
    assert not (await broker.history(s, 40, 10)).available
    if kind == "memory":
        assert event.epoch == "persisted"  # one process: a clean shutdown keeps the history
    else:
        # a shared stream is re-created from an event log that may lag behind another
        # process: the old numbers are never reused under the old name
        assert event.epoch != "persisted"


@pytest.mark.redis
async def test_losing_the_keys_seeds_again_under_a_new_epoch(
    start_redis: Started, redis_client: Any, prefix: str
) -> None:
    broker, _, seeds = await start_redis()
    s = sid()
    old = [await broker.publish(s, "contextual_update", body(s, i)) for i in range(5)]
    seeds.known[s] = Seed(5, "persisted")  # the event log has caught up
    keys = [k async for k in redis_client.scan_iter(match=f"{prefix}:{{{s}}}:*")]
    assert keys
    await redis_client.delete(*keys)  # what a Redis restart without persistence does

    position = await broker.position(s)
    assert position.seq == 5 and position.epoch != old[0].epoch
    new = await broker.publish(s, "contextual_update", body(s, 5))
    assert new.seq == 6 and new.epoch == position.epoch
    assert seeds.calls == [s, s]
    assert not (await broker.history(s, 3, 10)).available  # that history is gone
    assert list((await broker.history(s, 5, 10)).events) == [new]


# ---------------------------------------------------------------- presence


async def test_presence_add_remove_members(start: Started) -> None:
    broker, recorder, _ = await start()
    presence = broker.presence
    s, other = sid(), sid()
    alice = {"connection_id": "c1", "user_id": "alice", "client": "ui"}
    agent = {"connection_id": "c2", "user_id": "alice", "client": "agent"}
    assert await presence.members(s) == []
    await presence.add(s, "c1", alice)
    await presence.add(s, "c2", agent)
    await presence.add(other, "c3", {"connection_id": "c3", "n": [1, {"x": None}]})
    assert sorted(await presence.members(s), key=lambda m: m["connection_id"]) == [alice, agent]
    assert await presence.members(other) == [{"connection_id": "c3", "n": [1, {"x": None}]}]
    await presence.remove(s, "c1")
    assert await presence.members(s) == [agent]
    await presence.remove(s, "c1")  # twice is fine
    await presence.remove(s, "c2")
    assert await presence.members(s) == []
    assert len(await presence.members(other)) == 1
    assert recorder.events == [] and recorder.leaves == []  # presence publishes nothing


async def test_adding_again_replaces_the_info(start: Started) -> None:
    broker, _, _ = await start()
    s = sid()
    await broker.presence.add(s, "c1", {"connection_id": "c1", "client": "ui"})
    await broker.presence.add(s, "c1", {"connection_id": "c1", "client": "agent"})
    assert await broker.presence.members(s) == [{"connection_id": "c1", "client": "agent"}]


@pytest.mark.redis
async def test_a_dead_processs_entries_leave_and_reach_on_leave_not_the_stream(
    start_redis: Started, prefix: str, redis_kind: str
) -> None:
    """A process that stops renewing its entries (it died) drops out within the TTL; a
    live process with clients in the session reaps them and hands each to ``on_leave``
    as a ``Leave`` fact. The broker publishes nothing itself: announcing is the node's."""
    live, recorder, _ = await start_redis(presence_ttl=0.3)
    # a process that never heartbeats: its entries are never renewed, as after SIGKILL
    dead = RedisBroker(URLS[redis_kind], presence_ttl=0.3, prefix=prefix)
    s = sid()
    me = {"connection_id": "live1", "user_id": "alice", "client": "ui"}
    gone = {"connection_id": "dead1", "user_id": "alice", "client": "agent"}
    try:
        await live.subscribe(s)
        await live.presence.add(s, "live1", me)
        await dead.presence.add(s, "dead1", gone)
        assert len(await live.presence.members(s)) == 2
        await recorder.wait(lambda: bool(recorder.leaves))
    finally:
        await dead.close()
    assert recorder.leaves == [Leave(s, gone)]
    assert await live.presence.members(s) == [me]  # the live one is renewed by its heartbeat
    assert isinstance(live.presence, RedisPresence)
    await live.presence.renew()  # a second pass finds nothing more to hand over
    assert recorder.leaves == [Leave(s, gone)]
    # no frame from the broker: the first event of the session is the next publish
    event = await live.publish(s, "contextual_update", body(s, 1))
    assert event.seq == 1
    await recorder.wait(lambda: bool(recorder.of(s)))
    assert recorder.of(s) == [event]


@pytest.mark.redis
async def test_each_expired_entry_is_handed_to_exactly_one_process(
    start_redis: Started, prefix: str, redis_kind: str
) -> None:
    # A TTL a loaded machine keeps: a live process's heartbeat (a third of it) late past
    # the TTL is a stall, whose entries are rightly announced gone (section 4).
    ttl = 1.0
    (a, rec_a, _), (b, rec_b, _) = (
        await start_redis(presence_ttl=ttl),
        await start_redis(presence_ttl=ttl),
    )
    dead = RedisBroker(URLS[redis_kind], presence_ttl=ttl, prefix=prefix)
    s = sid()
    try:
        await a.presence.add(s, "a1", {"connection_id": "a1"})
        await b.presence.add(s, "b1", {"connection_id": "b1"})
        for n in range(5):
            await dead.presence.add(s, f"dead{n}", {"connection_id": f"dead{n}"})
        await rec_a.wait(lambda: len(rec_a.leaves) + len(rec_b.leaves) >= 5)
    finally:
        await dead.close()
    await asyncio.sleep(ttl)  # a few more heartbeats of both: nothing handed over twice
    reaped = sorted(leave.info["connection_id"] for leave in rec_a.leaves + rec_b.leaves)
    assert reaped == [f"dead{n}" for n in range(5)]
    assert sorted(m["connection_id"] for m in await a.presence.members(s)) == ["a1", "b1"]


@pytest.mark.redis
async def test_closing_withdraws_this_processs_entries_at_once(start_redis: Started) -> None:
    (a, _, _), (b, _, _) = await start_redis(), await start_redis()  # a TTL of 15 s
    s = sid()
    await a.presence.add(s, "a1", {"connection_id": "a1"})
    await b.presence.add(s, "b1", {"connection_id": "b1"})
    await b.close()
    assert await a.presence.members(s) == [{"connection_id": "a1"}]


# ---------------------------------------------------------------- subscriptions


@pytest.mark.redis
async def test_unsubscribe_stops_delivery_and_is_counted(start_redis: Started) -> None:
    publisher, _, _ = await start_redis()
    broker, recorder, _ = await start_redis()
    s, marker = sid(), sid()
    await broker.subscribe(marker)
    await broker.subscribe(s)
    await broker.subscribe(s)  # a join that overtook the previous leave's unsubscribe
    await broker.unsubscribe(s)
    await publisher.publish(s, "contextual_update", body(s, 1))
    await recorder.wait(lambda: len(recorder.of(s)) == 1)

    await broker.unsubscribe(s)
    await publisher.publish(s, "contextual_update", body(s, 2))
    await publisher.publish(marker, "contextual_update", body(marker, 1))
    # one connection delivers in publication order: had s's event come, it came first
    await recorder.wait(lambda: bool(recorder.of(marker)))
    assert [e.seq for e in recorder.of(s)] == [1]

    await broker.subscribe(s)
    await publisher.publish(s, "contextual_update", body(s, 3))
    await recorder.wait(lambda: len(recorder.of(s)) == 2)
    assert [e.seq for e in recorder.of(s)] == [1, 3]


async def subscribers(
    nodes: list[aioredis.Redis], prefix: str, count: int
) -> list[tuple[aioredis.Redis, str]]:
    """This test's subscriber connections (server, id), once ``count`` are connected."""
    async with asyncio.timeout(10):
        while True:
            ours = [
                (node, c["id"])
                for node in nodes
                for c in await node.client_list()
                if c.get("name") == f"{prefix}:subscriber"
            ]
            if len(ours) == count:
                return ours
            await asyncio.sleep(0.01)


@pytest.mark.redis
async def test_a_dropped_subscriber_reconnects_and_misses_nothing(
    start_redis: Started, redis_client: Any, prefix: str
) -> None:
    """Kill the subscriber's connections (one per shard on a cluster) while another
    process publishes: they come back by themselves and hand over every event, once, in
    seq order, before live ones."""
    nodes = await node_clients(redis_client)
    count = 2 * len(nodes)
    publisher, _, _ = await start_redis()
    broker, recorder, _ = await start_redis()
    s = sid()
    await broker.subscribe(s)
    await publisher.publish(s, "contextual_update", body(s, 0))
    await recorder.wait(lambda: len(recorder.of(s)) == 1)
    for _round in range(3):
        for node, client_id in await subscribers(nodes, prefix, count):
            await node.client_kill_filter(_id=client_id)
        for i in range(20):
            await publisher.publish(s, "contextual_update", body(s, i))
    await recorder.wait(lambda: len(recorder.of(s)) >= 61)
    await subscribers(nodes, prefix, count)
    await publisher.publish(s, "contextual_update", body(s, 99))
    await recorder.wait(lambda: len(recorder.of(s)) >= 62)
    assert [e.seq for e in recorder.of(s)] == list(range(1, 63))  # none twice, none lost
    assert await broker.ping()
    if isinstance(redis_client, RedisCluster):
        for node in nodes:
            await node.aclose()


@pytest.mark.redis
async def test_with_redis_away_publish_fails_and_ping_says_so() -> None:
    broker = RedisBroker(f"redis://127.0.0.1:{free_port()}/0", prefix="cwtest-nowhere")
    recorder = Recorder()
    await broker.start(recorder, Seeds(), recorder.leave)
    try:
        with pytest.raises(RedisConnectionError):
            await broker.publish(sid(), "contextual_update", b'{"type":"x"}')
        with pytest.raises(RedisConnectionError):
            await broker.ping()
    finally:
        await broker.close()


# ---------------------------------------------------------------- the voice floor


async def test_the_floor_is_a_compare_and_set_in_seq_order(start: Started) -> None:
    broker, recorder, _ = await start()
    s = sid()
    await broker.subscribe(s)
    assert await broker.floor(s) == ""
    first = await broker.swap_floor(s, "", "A", "contextual_update", body(s, 1))
    assert first is not None and first.seq == 1 and await broker.floor(s) == "A"
    # A swap expecting a floor that is no longer there publishes nothing.
    assert await broker.swap_floor(s, "", "B", "contextual_update", body(s, 2)) is None
    assert (await broker.position(s)).seq == 1 and await broker.floor(s) == "A"
    # None compares with nothing: a take whatever the floor is.
    taken = await broker.swap_floor(s, None, "B", "contextual_update", body(s, 3))
    assert taken is not None and taken.seq == 2 and await broker.floor(s) == "B"
    await recorder.wait(lambda: len(recorder.of(s)) >= 2)
    assert [e.seq for e in recorder.of(s)] == [1, 2]


@pytest.mark.redis
async def test_two_processes_swapping_the_floor_at_once_one_wins_each_round(
    start_redis: Started,
) -> None:
    (a, _, _), (b, _, _) = await start_redis(), await start_redis()
    s = sid()

    async def contend(broker: Broker, name: str) -> list[Event]:
        won = []
        for i in range(30):
            current, new = await broker.floor(s), f"{name}{i}"
            frame = encode(ContextualUpdate(session_id=s, text=current, data=new))
            event = await broker.swap_floor(s, current, new, "contextual_update", frame)
            if event is not None:
                won.append(event)
        return won

    won_a, won_b = await asyncio.gather(contend(a, "a"), contend(b, "b"))
    # How the wins split is the scheduler's (on a loaded machine one process may win every
    # round); that every published swap saw the floor its predecessor left is the rule.
    assert won_a or won_b
    # In seq order, every swap that published found the floor the one before it left.
    chain = sorted(won_a + won_b, key=lambda e: e.seq)
    floor = ""
    for event in chain:
        frame = json.loads(event.payload)
        assert frame["text"] == floor
        floor = frame["data"]
    assert await a.floor(s) == floor == await b.floor(s)


@pytest.mark.redis
async def test_a_stream_that_went_back_is_renamed_never_numbered_again(
    start_redis: Started, redis_client: Any, prefix: str
) -> None:
    """What a failover to a replica that had not received the primary's last writes
    does: the counter and the stream go back (4 and 5 are lost, though delivered). The
    subscriber, catching up after its connection dropped, finds the stream behind what
    it delivered and renames the history: the next event is #6 of a new epoch, handed
    over, instead of a second #4 that every process would drop as a duplicate."""
    publisher, _, _ = await start_redis()
    broker, recorder, _ = await start_redis()
    s = sid()
    await broker.subscribe(s)
    old = [await publisher.publish(s, "contextual_update", body(s, i)) for i in range(5)]
    await recorder.wait(lambda: len(recorder.of(s)) == 5)
    meta, stream = f"{prefix}:{{{s}}}:meta", f"{prefix}:{{{s}}}:stream"
    await redis_client.hset(meta, "seq", 3)
    await redis_client.xdel(stream, "4-0", "5-0")

    nodes = await node_clients(redis_client)
    count = 2 * len(nodes)
    for node, client_id in await subscribers(nodes, prefix, count):
        await node.client_kill_filter(_id=client_id)
    async with asyncio.timeout(10):
        while (await broker.position(s)).epoch == old[0].epoch:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    new = await publisher.publish(s, "contextual_update", body(s, 9))
    assert new.seq == 6 and new.epoch != old[0].epoch
    await recorder.wait(lambda: len(recorder.of(s)) == 6)
    assert recorder.of(s) == [*old, new]
    if isinstance(redis_client, RedisCluster):
        for node in nodes:
            await node.aclose()
