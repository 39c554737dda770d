"""Cluster fan-out: one session of 200 clients spread over two hub processes (Redis
broker, PostgreSQL), against the same 200 clients on one hub process with the in-memory
broker (PostgreSQL too).

    python bench/cluster_fanout.py                         # both setups, default ladder
    python bench/cluster_fanout.py --setup cluster --rates 50,100,200 --duration 3

This process is the load generator, pinned to CPU 1; the hubs and the Redis server are
subprocesses pinned to CPU 0, so both setups get the same one core for the server side
(this machine has two). PostgreSQL is the machine's own server: it only receives the
event log's batches, off the broadcast's path. Everything is on 127.0.0.1.

Two publishers (in the cluster, one on each process) send ``contextual_update`` frames
carrying their send time; each of the 200 clients (the publishers included) receives
every one: a *delivery*. The publish rate rises step by step until a step loses a
delivery, a socket is closed, an error comes back, or the step's p99 delivery latency
passes 50 ms (a step that only missed the p99 is run once more: a stall elsewhere on a
shared machine); the last step that passed is the sustained figure. Bounded in count
(--rates) and time (--max-seconds). Prints a table and writes
bench/results/cluster_fanout-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common import (
    CLIENT_CPU,
    RESULTS,
    SERVER_CPU,
    Server,
    WSClient,
    cluster_hub,
    cpu_seconds,
    create_session,
    gather_limited,
    header_lines,
    hub_tokens,
    percentile,
    pin,
    raise_nofile,
    row_line,
    table,
    use_uvloop,
    wait_quiet,
    write_results,
    ws_connect,
)

from tests.support.cluster import RedisServer
from tests.support.hub import create_pg_database, drop_pg_database

P99_LIMIT_MS = 50.0
TICK = 0.002
MARK = b'"contextual_update"'
ERROR_MARK = b'"type":"error"'
DEFAULT_RATES = "25,50,100,150,200,300,400,500,600,800"  # publishes per second


class Stamp(msgspec.Struct):
    t: int
    k: int


class Delivery(msgspec.Struct):
    data: Stamp


_decode = msgspec.json.Decoder(Delivery).decode


# ---------------------------------------------------------------- the servers


def start_redis() -> RedisServer:
    """The tests' redis-server (own port, no persistence), on the servers' CPU."""
    redis = RedisServer(Path(tempfile.mkdtemp(prefix="cw-bench-redis-"))).start()
    assert redis.proc is not None
    if (os.cpu_count() or 1) > SERVER_CPU:
        os.sched_setaffinity(redis.proc.pid, {SERVER_CPU})
    return redis


def hub(name: str, database_url: str, broker_url: str, *, migrate: bool) -> Server:
    # One user holds every client of the fleet (200 by default; the cap is 64).
    env = {"COMPANION_MAX_CONNECTIONS_PER_USER": "100000"}
    return cluster_hub(name, database_url, broker_url, migrate=migrate, env=env)


@dataclass
class Setup:
    name: str
    hubs: list[Server]
    redis: RedisServer | None
    database_url: str

    @classmethod
    def start(cls, name: str) -> Setup:
        database_url = create_pg_database()
        redis: RedisServer | None = None
        hubs: list[Server] = []
        try:
            if name == "cluster":
                redis = start_redis()
                hubs.append(hub("hub-a", database_url, redis.url, migrate=True).start())
                hubs.append(hub("hub-b", database_url, redis.url, migrate=False).start())
            else:
                hubs.append(hub("hub-single", database_url, "memory://", migrate=True).start())
        except BaseException:
            cls(name, hubs, redis, database_url).stop()
            raise
        return cls(name, hubs, redis, database_url)

    def stop(self) -> None:
        for server in self.hubs:
            server.stop()
        if self.redis is not None:
            self.redis.kill()
        drop_pg_database(self.database_url)

    def server_cpu_seconds(self) -> float:
        pids = [s.pid for s in self.hubs]
        if self.redis is not None and self.redis.proc is not None:
            pids.append(self.redis.proc.pid)
        return sum(cpu_seconds(pid) for pid in pids)


# ---------------------------------------------------------------- the clients


class Recorder:
    def __init__(self) -> None:
        self.received: dict[int, int] = {}
        self.latencies: dict[int, list[int]] = {}
        self.errors: list[bytes] = []
        self.last_frame = time.monotonic()

    def on_text(self, payload: bytes, now: int) -> None:
        if MARK in payload:
            stamp = _decode(payload).data
            self.received[stamp.k] = self.received.get(stamp.k, 0) + 1
            self.latencies.setdefault(stamp.k, []).append(now - stamp.t)
        elif ERROR_MARK in payload:
            self.errors.append(payload[:300])
        self.last_frame = time.monotonic()


class Fleet:
    """200 clients of one session, spread evenly over the setup's hubs; the first
    client on each hub publishes (two publishers on a single hub)."""

    def __init__(self, setup: Setup, clients: int) -> None:
        self.setup = setup
        self.clients = clients
        self.recorder = Recorder()
        self.publishers: list[WSClient] = []
        self.all: list[WSClient] = []

    @property
    def closed(self) -> int:
        return sum(1 for c in self.all if c.closed.done())

    async def connect(self) -> None:
        token = hub_tokens().mint("bench", ttl=7200)
        on_text = self.recorder.on_text
        hubs = self.setup.hubs
        creator, sid = await create_session(
            ws_connect, hubs[0].ws_url(f"/ws?token={token}"), on_text
        )
        self.all.append(creator)
        self.publishers.append(creator)
        urls = [h.ws_url(f"/ws/{sid}?token={token}") for h in hubs]
        rest = await gather_limited(
            [ws_connect(urls[i % len(urls)], on_text) for i in range(1, self.clients)], 32
        )
        self.all.extend(rest)
        second = rest[0]  # on hubs[1] in the cluster, on the same hub otherwise
        self.publishers.append(second)

    async def settle(self, quiet: float = 1.0, timeout: float = 120.0) -> None:
        """Until the join announcements have drained (no frame for ``quiet`` seconds)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            if time.monotonic() - self.recorder.last_frame >= quiet:
                return
        raise RuntimeError("the hubs kept sending after every client joined")

    def close(self) -> None:
        for client in self.all:
            client.close()


# ---------------------------------------------------------------- the ladder


@dataclass
class Step:
    publishes_per_s: int
    publishes: int
    expected: int
    received: int
    deliveries_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    lost: int
    closed: int
    errors: int
    server_cpu: float  # percent of one core: hubs + Redis
    background: float  # busiest core just before the step, percent
    passed: bool


@dataclass
class Run:
    setup: str
    hubs: int
    clients: int
    connect_seconds: float
    steps: list[Step] = field(default_factory=list)
    best: Step | None = None


async def run_step(fleet: Fleet, k: int, rate: int, duration: float, drain: float) -> Step:
    rec = fleet.recorder
    publishers = fleet.publishers
    closed_before, errors_before = fleet.closed, len(rec.errors)
    head = b'{"type":"contextual_update","text":"bench","data":{"t":'
    tail = b',"k":%d}}' % k
    background = await wait_quiet((SERVER_CPU, CLIENT_CPU), timeout=30)
    cpu0, wall0 = fleet.setup.server_cpu_seconds(), time.monotonic()
    start, sent = time.monotonic(), 0
    while (now := time.monotonic()) < start + duration:
        for _ in range(int(rate * (now - start)) - sent):
            publishers[sent % len(publishers)].send_text(b"%s%d%s" % (head, time.time_ns(), tail))
            sent += 1
        await asyncio.sleep(TICK)
    send_seconds = time.monotonic() - start
    expected = sent * fleet.clients
    deadline = time.monotonic() + drain
    while rec.received.get(k, 0) < expected and time.monotonic() < deadline:
        if fleet.closed > closed_before:
            break
        await asyncio.sleep(0.01)
    wall = time.monotonic() - wall0
    server_cpu = (fleet.setup.server_cpu_seconds() - cpu0) / wall * 100
    received = rec.received.get(k, 0)
    lat = sorted(rec.latencies.pop(k, []))
    p99 = percentile(lat, 99) / 1e6
    lost = max(0, expected - received)
    closed = fleet.closed - closed_before
    errors = len(rec.errors) - errors_before
    return Step(
        publishes_per_s=rate,
        publishes=sent,
        expected=expected,
        received=received,
        deliveries_per_s=received / send_seconds,
        p50_ms=percentile(lat, 50) / 1e6,
        p99_ms=p99,
        max_ms=(lat[-1] / 1e6) if lat else float("nan"),
        lost=lost,
        closed=closed,
        errors=errors,
        server_cpu=server_cpu,
        background=background,
        passed=lost == 0 and closed == 0 and errors == 0 and p99 <= P99_LIMIT_MS,
    )


async def bench(setup_name: str, args: argparse.Namespace, deadline: float) -> Run:
    setup = await asyncio.to_thread(Setup.start, setup_name)
    try:
        fleet = Fleet(setup, args.clients)
        t0 = time.monotonic()
        await fleet.connect()
        run = Run(setup_name, len(setup.hubs), args.clients, time.monotonic() - t0)
        await fleet.settle()
        rates = [int(r) for r in args.rates.split(",")]
        await run_step(fleet, -1, rates[0], args.duration, args.drain)  # warm-up, not judged
        await fleet.settle()
        print(f"\n{setup_name}: {args.clients} clients on {len(setup.hubs)} hub(s)")
        headers = ["pub/s", "deliv/s", "p50 ms", "p99 ms", "max ms", "lost", "srv cpu%", "ok"]
        print(header_lines(headers))
        for k, rate in enumerate(rates):
            if time.monotonic() > deadline:
                print("  (time budget spent)")
                break
            for attempt in range(args.retries + 1):  # a stall elsewhere on the box
                step = await run_step(fleet, k * 10 + attempt, rate, args.duration, args.drain)
                if step.passed or step.lost or step.closed or step.errors:
                    break
                await asyncio.sleep(args.pause)
            run.steps.append(step)
            row = [rate, step.deliveries_per_s, step.p50_ms, step.p99_ms, step.max_ms,
                   step.lost, step.server_cpu, "yes" if step.passed else "NO"]  # fmt: skip
            print(row_line(headers, row), flush=True)
            if not step.passed:
                break
            run.best = step
            await asyncio.sleep(args.pause)
        fleet.close()
        return run
    finally:
        await asyncio.to_thread(setup.stop)


async def main(args: argparse.Namespace) -> int:
    pin(CLIENT_CPU)
    raise_nofile(4096)
    deadline = time.monotonic() + args.max_seconds
    setups = ["single", "cluster"] if args.setup == "both" else [args.setup]
    runs = [await bench(name, args, deadline) for name in setups]
    rows = []
    for run in runs:
        best = run.best
        rows.append(
            [run.setup, run.hubs, run.clients,
             best.deliveries_per_s if best else float("nan"),
             best.p50_ms if best else float("nan"),
             best.p99_ms if best else float("nan"),
             best.server_cpu if best else float("nan")]
        )  # fmt: skip
    print()
    print(table(["setup", "hubs", "clients", "sustained deliv/s", "p50 ms", "p99 ms",
                 "srv cpu%"], rows))  # fmt: skip
    common = _common_rate(runs)
    if common is not None:
        print(f"\nat the highest rate both passed ({common} publishes/s):")
        for run in runs:
            step = next(s for s in run.steps if s.publishes_per_s == common)
            print(f"  {run.setup:8} {step.deliveries_per_s:10,.0f} deliveries/s  "
                  f"p50 {step.p50_ms:.1f} ms  p99 {step.p99_ms:.1f} ms")  # fmt: skip
    path = write_results(
        "cluster_fanout",
        {"args": vars(args), "runs": [asdict(r) for r in runs], "command": " ".join(sys.argv)},
    )
    print(f"\nresults: {path.relative_to(RESULTS.parent.parent)}")
    return 0


def _common_rate(runs: list[Run]) -> int | None:
    passed = [{s.publishes_per_s for s in r.steps if s.passed} for r in runs]
    if not passed or not all(passed):
        return None
    both = set.intersection(*passed)
    return max(both) if both else None


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--setup", choices=["single", "cluster", "both"], default="both")
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--rates", default=DEFAULT_RATES, help="publishes per second, per step")
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per step")
    parser.add_argument("--drain", type=float, default=3.0, help="seconds to wait for stragglers")
    parser.add_argument("--pause", type=float, default=0.5)
    parser.add_argument(
        "--retries", type=int, default=1, help="runs of a step whose only fault is its p99"
    )
    parser.add_argument("--max-seconds", type=float, default=300.0, help="whole-run bound")
    return parser.parse_args(argv)


if __name__ == "__main__":
    use_uvloop()
    args: Any = parse_args()
    raise SystemExit(asyncio.run(main(args)))
