"""Idle-connection benchmark: the server's memory per open, idle WebSocket.

Server on CPU 0, this generator on CPU 1. After a warm-up (a few connections opened
and closed, so one-time imports and caches are not charged to the connections), the
server's VmRSS is read from /proc/PID/status; then ``--connections`` clients connect
(``--per-session`` per session) and stay idle; once the join announcements have
drained and ``--settle`` seconds have passed, VmRSS is read again.

    python bench/idle.py                          # hub and baseline, 5,000 connections
    python bench/idle.py --server hub --connections 5000 --per-session 10
    python bench/idle.py --server uvicorn-floor --floor-server granian   # another floor

Prints a table and writes bench/results/idle-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    CLIENT_CPU,
    FLOOR_DEFAULT,
    FLOOR_SERVERS,
    Server,
    WSClient,
    admit,
    baseline_server,
    cpu_seconds,
    gather_limited,
    git_revision,
    hub_server,
    hub_tokens,
    pin,
    raise_nofile,
    rss_kb,
    start_py_spy,
    table,
    use_uvloop,
    uvicorn_floor_server,
    write_results,
)


@dataclass
class Result:
    server: str
    connections: int
    per_session: int
    rss_before_kb: int
    rss_after_kb: int
    kb_per_connection: float
    connect_seconds: float  # first connect attempt to the last admission
    connects_per_s: float  # sustained: admissions between the 10th and 90th percentile
    server_ms_per_connect: float  # the server's CPU time over the connects, per socket
    server_cpu: float  # percent of one core while connecting
    client_cpu: float  # the generator's
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
    server: Server,
    kind: str,
    sessions: int,
    per_session: int,
    first: int,
    quiet: Quiet,
    *,
    concurrency: int = 20,
    admitted: list[float] | None = None,
) -> list[WSClient]:
    """``sessions`` x ``per_session`` sockets, ``concurrency`` sessions at a time (the
    first socket of a hub session creates it; the others then connect at once). On the
    hub a socket counts once its welcome came (:func:`common.admit`); each admission's
    time goes into ``admitted``."""
    tokens = hub_tokens() if kind == "hub" else None
    welcome = tokens is not None or kind == "uvicorn-floor"  # both send a welcome
    stamps = admitted if admitted is not None else []

    async def one(url: str) -> WSClient:
        client = await admit(url, quiet.on_text, welcome=welcome)
        stamps.append(time.monotonic())
        return client

    async def one_session(index: int) -> list[WSClient]:
        if tokens is not None:
            token = tokens.mint(f"idle-u{index}", ttl=7200)
            sid_box: list[str] = []

            def on_first(payload: bytes, now: int) -> None:
                if not sid_box:
                    sid_box.append(msgspec.json.decode(payload)["session_id"])
                quiet.on_text(payload, now)

            head = await admit(server.ws_url(f"/ws?token={token}"), on_first, welcome=True)
            stamps.append(time.monotonic())
            head.on_text = quiet.on_text
            url = server.ws_url(f"/ws/{sid_box[0]}?token={token}")
        else:
            url = server.ws_url(f"/ws?session_id=idle{index}")
            head = await one(url)
        rest = [one(url) for _ in range(per_session - 1)]
        return [head, *await asyncio.gather(*rest)]

    groups = await gather_limited([one_session(first + i) for i in range(sessions)], concurrency)
    return [c for group in groups for c in group]


def sustained_rate(stamps: list[float], low: float = 0.1, high: float = 0.9) -> float:
    """Admissions per second between the ``low`` and ``high`` fractions of them (the
    ramp-up and the tail left out)."""
    if len(stamps) < 10:
        return float("nan")
    ordered = sorted(stamps)
    i, j = int(len(ordered) * low), int(len(ordered) * high) - 1
    span = ordered[j] - ordered[i]
    return (j - i) / span if span > 0 else float("nan")


async def bench_one(
    server: Server,
    kind: str,
    *,
    connections: int = 5000,
    per_session: int = 10,
    concurrency: int = 20,
    settle: float = 5.0,
    profile: Path | None = None,
) -> Result:
    """Connect ``connections`` sockets and keep them idle: the connect figures, then the
    server's memory per socket. ``profile`` py-spies the server during the connects."""
    quiet = Quiet()
    # Warm-up: pay the one-time costs (imports, statement caches) before measuring.
    warm = await open_sessions(server, kind, 2, per_session, 10_000_000, quiet)
    await quiet.settle(quiet=1.0)
    for client in warm:
        client.close()
    await asyncio.sleep(2.0)
    before = rss_kb(server.pid)
    sessions = -(-connections // per_session)
    spy = start_py_spy(server.pid, profile, 60) if profile is not None else None
    if spy is not None:
        await asyncio.sleep(1.0)  # py-spy attaches
    stamps: list[float] = []
    cpu0, gen0 = cpu_seconds(server.pid), time.process_time()
    t0 = time.monotonic()
    clients = await open_sessions(
        server, kind, sessions, per_session, 0, quiet, concurrency=concurrency, admitted=stamps
    )
    connect_seconds = time.monotonic() - t0
    server_seconds = cpu_seconds(server.pid) - cpu0
    client_seconds = time.process_time() - gen0
    if spy is not None:
        spy.send_signal(signal.SIGINT)  # py-spy writes what it has
        spy.wait(60)
    await quiet.settle()
    await asyncio.sleep(settle)
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
        per_session=per_session,
        rss_before_kb=before,
        rss_after_kb=after,
        kb_per_connection=(after - before) / n,
        connect_seconds=round(connect_seconds, 2),
        connects_per_s=sustained_rate(stamps),
        server_ms_per_connect=server_seconds / n * 1000,
        server_cpu=server_seconds / connect_seconds * 100,
        client_cpu=client_seconds / connect_seconds * 100,
        closed=closed,
    )


HEADERS = ["server", "connections", "per session", "RSS before KB", "RSS after KB", "KB/conn",
           "connect s", "connects/s", "srv ms/conn", "srv cpu%", "gen cpu%", "closed"]  # fmt: skip


def row(r: Result) -> list[object]:
    return [r.server, r.connections, r.per_session, r.rss_before_kb, r.rss_after_kb,
            r.kb_per_connection, r.connect_seconds, r.connects_per_s, r.server_ms_per_connect,
            r.server_cpu, r.client_cpu, r.closed]  # fmt: skip


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
        elif kind == "uvicorn-floor":
            server = uvicorn_floor_server(server=args.floor_server)
        else:
            server = baseline_server(uvloop=args.baseline_uvloop)
        server.start()
        profile = Path(args.profile) if args.profile and kind == "hub" else None
        try:
            result = await bench_one(
                server,
                kind,
                connections=args.connections,
                per_session=args.per_session,
                concurrency=args.concurrency,
                settle=args.settle,
                profile=profile,
            )
        finally:
            server.stop()
        results.append(result)
        print(
            f"{result.server}: {result.kb_per_connection:.1f} KB per idle connection, "
            f"{result.connections:,} admitted in {result.connect_seconds:.2f} s",
            flush=True,
        )
        await asyncio.sleep(0.5)
    print("\n" + table(HEADERS, [row(r) for r in results]))
    path = write_results(
        "idle", {"commit": commit, "argv": sys.argv[1:], "results": [asdict(r) for r in results]}
    )
    print(f"\nresults: {path}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", choices=["hub", "baseline", "both", "uvicorn-floor"], default="both")
    p.add_argument("--connections", type=int, default=5000)
    p.add_argument("--per-session", type=int, default=10)
    p.add_argument("--settle", type=float, default=5.0, help="idle seconds before reading RSS")
    p.add_argument("--concurrency", type=int, default=20, help="sessions connecting at a time")
    p.add_argument("--profile", help="py-spy the hub during the connects: OUT.svg|.json|.txt")
    p.add_argument("--hub-pythonpath", help="PYTHONPATH for the hub (a scratch copy)")
    p.add_argument("--env", action="append", default=[], help="KEY=VALUE for the hub")
    p.add_argument("--baseline-uvloop", action="store_true", help="baseline on uvloop")
    p.add_argument(
        "--floor-server",
        choices=FLOOR_SERVERS,
        default=FLOOR_DEFAULT,
        help="the server under --server uvicorn-floor's app (bench/uvicorn_floor.py --server)",
    )
    return p.parse_args(argv)


if __name__ == "__main__":
    use_uvloop()
    raise SystemExit(asyncio.run(main(parse_args())))
