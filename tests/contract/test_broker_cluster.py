"""The Redis broker on a Redis Cluster of the test's own (docs/protocol.md section 18):
a shard killed mid-traffic comes back from its append-only file and nothing it kept is
lost; a session whose slot moves to another shard is followed (MOVED) without a gap or a
duplicate. The rest of the broker contract runs on the shared cluster too
(test_broker.py)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from companion_ws.broker.redis import RedisBroker
from companion_ws.values import Event
from tests.contract.test_broker import Recorder, Seeds, body
from tests.support.redis_cluster import LocalRedisCluster

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedisCluster]:
    cluster = LocalRedisCluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield cluster.start()
    finally:
        cluster.stop()


Pair = tuple[RedisBroker, RedisBroker, Recorder]


@pytest.fixture
async def pair(own_cluster: LocalRedisCluster) -> AsyncIterator[Pair]:
    """A publishing broker and a subscribed one (two processes of one deployment), and
    what the subscribed one hands over."""
    prefix = f"cwtest-{uuid.uuid4().hex[:8]}"
    publisher = RedisBroker(own_cluster.url, prefix=prefix)
    subscriber = RedisBroker(own_cluster.url, prefix=prefix)
    recorder, other = Recorder(), Recorder()
    await publisher.start(other, Seeds(), other.leave)
    await subscriber.start(recorder, Seeds(), recorder.leave)
    try:
        yield publisher, subscriber, recorder
    finally:
        await publisher.close()
        await subscriber.close()


class Traffic:
    """Publishes round-robin into ``sessions`` until stopped; keeps what was
    acknowledged and counts what failed."""

    def __init__(self, broker: RedisBroker, sessions: list[str]) -> None:
        self.broker = broker
        self.sessions = sessions
        self.acked: dict[str, list[Event]] = {s: [] for s in sessions}
        self.failed = 0
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> Traffic:
        self._task = asyncio.create_task(self._run())
        return self

    async def _run(self) -> None:
        n = 0
        while not self._stop.is_set():
            for s in self.sessions:
                n += 1
                try:
                    self.acked[s].append(
                        await self.broker.publish(s, "contextual_update", body(s, n))
                    )
                except Exception:
                    self.failed += 1
                    await asyncio.sleep(0.02)
            await asyncio.sleep(0.002)

    async def stop(self) -> None:
        self._stop.set()
        assert self._task is not None
        await self._task


def session_on(cluster: LocalRedisCluster, port: int) -> str:
    while True:
        s = uuid.uuid4().hex
        if cluster.owner(f"cwtest:{{{s}}}".encode()) == port:
            return s


async def eventually_delivered(recorder: Recorder, traffic: Traffic) -> None:
    """Every acknowledged event reached the subscriber; then each session's deliveries
    are 1..n, once each, in order, in one epoch (the history was never re-seeded)."""
    await recorder.wait(
        lambda: all(
            not acked or any(e.seq >= acked[-1].seq for e in recorder.of(s))
            for s, acked in traffic.acked.items()
        ),
        timeout=20,
    )
    for s, acked in traffic.acked.items():
        delivered = recorder.of(s)
        assert [e.seq for e in delivered] == list(range(1, len(delivered) + 1)), s
        assert {e.seq for e in acked} <= {e.seq for e in delivered}
        assert len({e.epoch for e in delivered}) == 1
        kept = await traffic.broker.history(s, 0, 10_000)
        assert kept.available and kept.position.epoch == delivered[0].epoch
        assert [e.seq for e in kept.events] == [e.seq for e in delivered]


async def test_a_shard_killed_mid_traffic_restarts_from_its_aof_and_nothing_is_lost(
    own_cluster: LocalRedisCluster, pair: Pair
) -> None:
    publisher, subscriber, recorder = pair
    sessions = [session_on(own_cluster, port) for port in own_cluster.ports]
    for s in sessions:
        await subscriber.subscribe(s)
    traffic = Traffic(publisher, sessions).start()
    await asyncio.sleep(0.3)
    own_cluster.kill(own_cluster.ports[1])
    await asyncio.sleep(0.5)
    await asyncio.to_thread(own_cluster.start)  # the same node, from its AOF
    before = len(traffic.acked[sessions[1]])
    await recorder.wait(lambda: len(traffic.acked[sessions[1]]) >= before + 20, timeout=20)
    await traffic.stop()
    assert traffic.failed > 0  # the kill did land in the traffic
    assert all(len(acked) > 20 for acked in traffic.acked.values())
    await eventually_delivered(recorder, traffic)
    assert await subscriber.ping()


async def test_a_session_whose_slot_moves_to_another_shard_is_followed(
    own_cluster: LocalRedisCluster, pair: Pair
) -> None:
    publisher, subscriber, recorder = pair
    s = session_on(own_cluster, own_cluster.ports[0])
    await subscriber.subscribe(s)
    traffic = Traffic(publisher, [s]).start()
    await asyncio.sleep(0.3)
    await asyncio.to_thread(own_cluster.move_slot, f"x:{{{s}}}".encode(), own_cluster.ports[2])
    assert own_cluster.owner(f"x:{{{s}}}".encode()) == own_cluster.ports[2]
    before = len(traffic.acked[s])
    await recorder.wait(lambda: len(traffic.acked[s]) >= before + 50, timeout=20)
    await traffic.stop()
    assert traffic.failed == 0  # MOVED is followed, not reported
    await eventually_delivered(recorder, traffic)
