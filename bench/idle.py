"""Idle-connection benchmark: the server's memory per open, idle WebSocket.

Server on CPU 0, this generator on CPU 1. After a warm-up (a few connections opened
and closed, so one-time imports and caches are not charged to the connections), the
server's VmRSS is read from /proc/PID/status; then ``--connections`` clients connect
(``--per-session`` per session) and stay idle; once the join announcements have
drained and ``--settle`` seconds have passed, VmRSS is read again.

    python bench/idle.py                          # hub and baseline, 5,000 connections
    python bench/idle.py --server hub --connections 5000 --per-session 10

Prints a table and writes bench/results/idle-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    CLIENT_CPU,
    Server,
    WSClient,
    baseline_server,
    gather_limited,
    git_revision,
    hub_server,
    hub_tokens,
    pin,
    raise_nofile,
    rss_kb,
    table,
    use_uvloop,
    write_results,
    ws_connect,
)


@dataclass
class Result:
    server: str
    connections: int
    per_session: int
    rss_before_kb: int
    rss_after_kb: int
    kb_per_connection: float
    connect_seconds: float
    closed: int


class Quiet:
    """Counts frames (join announcements) and notes when the last one came."""

    def __init__(self) -> None:
        self.frames = 0
        self.last = time.monotonic()

    def on_text(self, payload: bytes, now: int) -> None:
        self.frames += 1
        self.last = time.monotonic()

    async def settle(self, quiet: float = 2.0, timeout: float = 300.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await asyncio.sleep(0.25)
            if time.monotonic() - self.last >= quiet:
                return
        raise RuntimeError("the server kept sending to idle clients")


async def open_sessions(
    server: Server, kind: str, sessions: int, per_session: int, first: int, quiet: Quiet
) -> list[WSClient]:
    tokens = hub_tokens() if kind == "hub" else None

    async def one_session(index: int) -> list[WSClient]:
        if tokens is not None:
            token = tokens.mint(f"idle-u{index}", ttl=7200)
            welcome: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

            def on_first(payload: bytes, now: int) -> None:
                if not welcome.done():
                    welcome.set_result(payload)
                quiet.on_text(payload, now)

            head = await ws_connect(server.ws_url(f"/ws?token={token}"), on_first)
            sid = msgspec.json.decode(await asyncio.wait_for(welcome, 30))["session_id"]
            url = server.ws_url(f"/ws/{sid}?token={token}")
        else:
            url = server.ws_url(f"/ws?session_id=idle{index}")
            head = await ws_connect(url, quiet.on_text)
        rest = [ws_connect(url, quiet.on_text) for _ in range(per_session - 1)]
        return [head, *await asyncio.gather(*rest)]

    groups = await gather_limited([one_session(first + i) for i in range(sessions)], 20)
    return [c for group in groups for c in group]


async def bench_one(server: Server, kind: str, args: argparse.Namespace) -> Result:
    quiet = Quiet()
    # Warm-up: pay the one-time costs (imports, statement caches) before measuring.
    warm = await open_sessions(server, kind, 2, args.per_session, 10_000_000, quiet)
    await quiet.settle(quiet=1.0)
    for client in warm:
        client.close()
    await asyncio.sleep(2.0)
    before = rss_kb(server.pid)
    t0 = time.monotonic()
    sessions = -(-args.connections // args.per_session)
    clients = await open_sessions(server, kind, sessions, args.per_session, 0, quiet)
    connect_seconds = time.monotonic() - t0
    await quiet.settle()
    await asyncio.sleep(args.settle)
    samples = []
    for _ in range(3):
        samples.append(rss_kb(server.pid))
        await asyncio.sleep(1.0)
    after = max(samples)
    closed = sum(1 for c in clients if c.closed.done())
    n = len(clients)
    for client in clients:
        client.close()
    return Result(
        server=server.name,
        connections=n,
        per_session=args.per_session,
        rss_before_kb=before,
        rss_after_kb=after,
        kb_per_connection=(after - before) / n,
        connect_seconds=round(connect_seconds, 2),
        closed=closed,
    )


async def main(args: argparse.Namespace) -> int:
    commit = git_revision()  # the code under test is the code at the start
    pin(CLIENT_CPU)
    raise_nofile(args.connections * 2 + 1000)
    results: list[Result] = []
    servers = ["hub", "baseline"] if args.server == "both" else [args.server]
    for kind in servers:
        if kind == "hub":
            env = dict(kv.split("=", 1) for kv in args.env)
            server = hub_server(pythonpath=args.hub_pythonpath, env=env)
        else:
            server = baseline_server(uvloop=args.baseline_uvloop)
        server.start()
        try:
            result = await bench_one(server, kind, args)
        finally:
            server.stop()
        results.append(result)
        print(f"{result.server}: {result.kb_per_connection:.1f} KB per idle connection", flush=True)
        await asyncio.sleep(0.5)
    headers = ["server", "connections", "per session", "RSS before KB", "RSS after KB",
               "KB/conn", "connect s", "closed"]  # fmt: skip
    rows = [
        [r.server, r.connections, r.per_session, r.rss_before_kb, r.rss_after_kb,
         r.kb_per_connection, r.connect_seconds, r.closed]
        for r in results
    ]  # fmt: skip
    print("\n" + table(headers, rows))
    path = write_results(
        "idle", {"commit": commit, "argv": sys.argv[1:], "results": [asdict(r) for r in results]}
    )
    print(f"\nresults: {path}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", choices=["hub", "baseline", "both"], default="both")
    p.add_argument("--connections", type=int, default=5000)
    p.add_argument("--per-session", type=int, default=10)
    p.add_argument("--settle", type=float, default=5.0, help="idle seconds before reading RSS")
    p.add_argument("--hub-pythonpath", help="PYTHONPATH for the hub (a scratch copy)")
    p.add_argument("--env", action="append", default=[], help="KEY=VALUE for the hub")
    p.add_argument("--baseline-uvloop", action="store_true", help="baseline on uvloop")
    return p.parse_args(argv)


if __name__ == "__main__":
    use_uvloop()
    raise SystemExit(asyncio.run(main(parse_args())))
