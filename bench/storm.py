"""The reconnect storm (issue 27): N clients spread over two hub processes (Redis broker,
PostgreSQL), one process SIGKILLed while events flow; its clients come back to the
other at once, each with the full-jitter backoff of the Python client
(``companion_ws.client.retry.Retry``) and ``last_seq``/``epoch``.

    python bench/storm.py                          # 5,000 clients, 10 per session
    python bench/storm.py --clients 2000 --rate 200
    python bench/storm.py --broker-url redis+cluster://127.0.0.1:7001   # on a Redis Cluster

Measured: the time from the kill until the last client is welcomed again (and until
the last one has caught up with its session), resumes vs snapshots (a welcome with
``resumed: true`` vs a ``resync_required``), failed attempts by close code or error
(a 1011 is the survivor falling over), and per client the seq order: every event of
its session exactly once, in order, across the kill (gaps and duplicates counted).
The connect-rate limit per address is raised, as a load balancer's many addresses
would allow. The hubs and Redis are pinned to CPU 0, this generator to CPU 1.
Prints a table and writes bench/results/storm-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cluster_fanout import start_redis
from common import (
    CLIENT_CPU,
    SERVER_CPU,
    Server,
    WSClient,
    admit,
    cluster_hub,
    gather_limited,
    hub_tokens,
    pin,
    raise_nofile,
    table,
    use_uvloop,
    write_results,
)

from companion_ws.client.retry import Retry
from tests.support.hub import create_pg_database, drop_pg_database

UNSEQ = {"session_joined", "session_state", "resync_required", "resumed", "history", "presence"}


def hub(name: str, database_url: str, broker_url: str, *, migrate: bool) -> Server:
    # one generator address stands for a load balancer's many
    env = {"COMPANION_CONNECT_RATE": "1000000", "COMPANION_CONNECT_BURST": "1000000"}
    return cluster_hub(name, database_url, broker_url, migrate=migrate, env=env)


@dataclass
class Client:
    sid: str
    token: str
    home: int  # the hub it connects to first
    last_seq: int = 0
    epoch: str = ""
    gaps: int = 0
    dups: int = 0
    holes: list[tuple[int, int, bool]] = field(default_factory=list)  # (after, got, moved yet)
    welcomed_at: float = 0.0
    resumed: int = 0
    snapshots: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    ws: WSClient | None = None

    def on_text(self, payload: bytes, _now: int) -> None:
        frame = json.loads(payload)
        kind = frame.get("type")
        if kind == "session_joined":
            self.welcomed_at = time.monotonic()
            self.sid = self.sid or frame["session_id"]
            self.epoch = frame["epoch"]
            if frame.get("resumed"):
                self.resumed += 1
            elif self.last_seq == 0:
                self.last_seq = frame["seq"]  # the first join: live from here
        elif kind == "resync_required":
            self.snapshots += 1
            self.last_seq = frame.get("seq", self.last_seq)
        elif kind == "error":
            self.failures[frame.get("code", "error")] = self.failures.get(frame.get("code"), 0) + 1
        elif "seq" in frame and kind not in UNSEQ:
            seq = frame["seq"]
            if seq <= self.last_seq:
                self.dups += 1
            else:
                if seq > self.last_seq + 1:
                    self.gaps += seq - self.last_seq - 1
                    self.holes.append((self.last_seq, seq, self.resumed > 0))
                self.last_seq = seq

    def url(self, server: Server) -> str:
        query = f"token={self.token}"
        if self.epoch:
            query += f"&last_seq={self.last_seq}&epoch={self.epoch}"
        return server.ws_url(f"/ws/{self.sid}?{query}")


async def reconnect(client: Client, survivor: Server, killed_at: float) -> None:
    """After its socket died: the Python client's full-jitter backoff, then a resume on
    the survivor; again after each refused attempt."""
    retry = Retry(started=killed_at, backoff_initial=0.2, backoff_max=5.0)
    code: int | None = 1006
    welcomed = True
    while True:
        delay = retry.after(code, "storm", welcomed=welcomed, now=time.monotonic())
        assert isinstance(delay, float), delay
        await asyncio.sleep(delay)
        welcomed = False
        try:
            client.ws = await admit(client.url(survivor), client.on_text, welcome=True, timeout=30)
            return
        except Exception as exc:
            name = type(exc).__name__
            if "1011" in str(exc):
                name = "1011"
            client.failures[name] = client.failures.get(name, 0) + 1
            code = 1006


def pin_cluster(url: str) -> None:
    """The cluster's nodes on the servers' CPU, as the bench's own redis-server is."""
    import redis as sync_redis

    from companion_ws.broker.redis.cluster import seed_nodes

    host, port = seed_nodes(url)[0]
    seed = sync_redis.Redis(host=host, port=port)
    try:
        for address in seed.execute_command("CLUSTER NODES"):  # {"host:port@bus": ...}
            node_host, node_port = str(address).split("@")[0].rsplit(":", 1)
            node = sync_redis.Redis(host=node_host, port=int(node_port))
            try:
                os.sched_setaffinity(int(node.info("server")["process_id"]), {SERVER_CPU})
            finally:
                node.close()
    finally:
        seed.close()


async def run(args: argparse.Namespace, database_url: str) -> dict[str, Any]:
    raise_nofile(args.clients * 2 + 1000)
    pin(CLIENT_CPU)
    redis = None if args.broker_url else start_redis()
    broker_url = args.broker_url or redis.url  # type: ignore[union-attr]
    if args.broker_url.startswith("redis+cluster://"):
        pin_cluster(args.broker_url)
    hubs: list[Server] = []
    try:
        hubs.append(hub("storm-a", database_url, broker_url, migrate=True).start(timeout=60))
        hubs.append(hub("storm-b", database_url, broker_url, migrate=False).start(timeout=60))
        tokens = hub_tokens()
        sessions = args.clients // args.per_session
        clients: list[Client] = []
        t0 = time.monotonic()
        for k in range(sessions):  # one user per session: the create rate is per user
            token = tokens.mint(f"storm-{k}", ttl=7200)
            first = Client("", token, 1)
            first.ws = await admit(
                hubs[1].ws_url(f"/ws?token={token}"), first.on_text, welcome=True
            )
            clients.append(first)
        rest = [
            Client(creator.sid, creator.token, i % 2)
            for creator in clients
            for i in range(args.per_session - 1)
        ]

        async def join(c: Client) -> None:
            c.ws = await admit(c.url(hubs[c.home]), c.on_text, welcome=True, timeout=60)

        await gather_limited([join(c) for c in rest], 64)
        clients.extend(rest)
        connect_s = time.monotonic() - t0
        on_a = [c for c in clients if c.home == 0]
        print(f"{len(clients)} clients in {sessions} sessions connected in {connect_s:.1f}s "
              f"({len(on_a)} on the victim)", flush=True)  # fmt: skip
        await asyncio.sleep(2.0)  # the join announcements drain

        publishers = clients[:sessions]  # the creators, on the survivor
        stop = asyncio.Event()

        async def publish() -> None:
            n, period = 0, 1.0 / args.rate
            start = time.monotonic()
            while not stop.is_set():
                p = publishers[n % len(publishers)]
                assert p.ws is not None
                p.ws.send_text(b'{"type":"contextual_update","text":"storm","data":{"n":%d}}' % n)
                n += 1
                await asyncio.sleep(max(0.0, start + n * period - time.monotonic()))

        publisher = asyncio.create_task(publish())
        await asyncio.sleep(2.0)
        killed_at = time.monotonic()
        hubs[0].stop()  # SIGKILL
        storm = [asyncio.create_task(reconnect(c, hubs[1], killed_at)) for c in on_a]
        _, pending = await asyncio.wait(storm, timeout=args.max_seconds)
        for task in pending:
            task.cancel()
        all_live_s = max((c.welcomed_at for c in on_a), default=killed_at) - killed_at
        await asyncio.sleep(2.0)
        stop.set()
        await publisher
        # caught up: every client at its session's last seq
        final: dict[str, int] = {}
        for c in clients:
            final[c.sid] = max(final.get(c.sid, 0), c.last_seq)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for c in clients:
                final[c.sid] = max(final[c.sid], c.last_seq)
            if all(c.last_seq == final[c.sid] for c in clients):
                break
            await asyncio.sleep(0.2)
        failures: dict[str, int] = {}
        for c in clients:
            for name, count in c.failures.items():
                failures[name] = failures.get(name, 0) + count
        result = {
            "clients": len(clients),
            "sessions": sessions,
            "moved": len(on_a),
            "rate": args.rate,
            "broker": "own redis-server" if redis is not None else broker_url,
            "connect_s": round(connect_s, 2),
            "all_live_s": round(all_live_s, 2),
            "not_back": len(pending),
            "resumes": sum(c.resumed for c in on_a),
            "snapshots": sum(c.snapshots for c in clients),
            "gaps": sum(c.gaps for c in clients),
            "dups": sum(c.dups for c in clients),
            "behind": sum(1 for c in clients if c.last_seq != final[c.sid]),
            "failed_attempts": failures,
        }
        holes = [(c.home, c.holes) for c in clients if c.holes][:10]
        if holes:
            print("gaps (home hub, [(after, got, after the move)]):", holes, flush=True)
        for c in clients:
            if c.ws is not None:
                c.ws.close()
        return result
    finally:
        for server in hubs:
            server.stop()
        if redis is not None:
            redis.kill()


@dataclass
class Options:
    clients: int = 5000
    per_session: int = 10
    rate: int = 200
    max_seconds: float = 120.0
    broker_url: str = ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, default=Options.clients)
    parser.add_argument("--per-session", type=int, default=Options.per_session)
    parser.add_argument("--rate", type=int, default=Options.rate, help="publishes/s, all sessions")
    parser.add_argument("--max-seconds", type=float, default=Options.max_seconds)
    parser.add_argument("--broker-url", default="", help="default: a redis-server of its own")
    args = parser.parse_args()
    use_uvloop()
    database_url = create_pg_database()
    try:
        result = asyncio.run(run(args, database_url))
    finally:
        drop_pg_database(database_url)
    rows = [[k, json.dumps(v) if isinstance(v, dict) else v] for k, v in result.items()]
    print(table(["figure", "value"], rows))
    print(write_results("storm", {"options": asdict(Options(**vars(args))), "result": result}))


if __name__ == "__main__":
    main()
