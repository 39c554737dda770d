"""Tool-call benchmark: a `client_tool_call` reaching every screen of its session.

Hub on CPU 0, this load generator on CPU 1 (fresh SQLite file, in-memory broker).
100 sessions x 10 clients; in each session one client calls ``get_shipping_quotes``
with a fresh ``tool_call_id`` (and ``requestId``); the calls are spread evenly over the
sessions at ``--rate`` calls/s in all. The hub persists the state change, broadcasts
``session_state_updated`` then ``contextual_update`` ``quote_ready`` to every client of
the session (the caller included) and answers the caller ``client_tool_result``. A
*delivery* is one client receiving the call's ``quote_ready``; its latency runs from
sending the call to that frame's arrival (matched on ``requestId``).

    python bench/toolcalls.py                           # 1,000 calls/s for 10 s
    python bench/toolcalls.py --rate 2000 --duration 5

Prints a table and writes bench/results/toolcalls-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    CLIENT_CPU,
    SERVER_CPU,
    Server,
    WSClient,
    core_busy,
    core_times,
    cpu_seconds,
    create_session,
    gather_limited,
    hub_server,
    hub_tokens,
    load_average,
    percentile,
    pin,
    raise_nofile,
    start_py_spy,
    table,
    use_uvloop,
    wait_quiet,
    write_results,
    ws_connect,
)

TICK = 0.002
CALL = (
    b'{"type":"client_tool_call","requestId":"%s","client_tool_call":{"tool_name":'
    b'"get_shipping_quotes","tool_call_id":"%s","parameters":'
    b'{"from_zip":"94105","to_zip":"10001","weight":%d}}}'
)


class Frame(msgspec.Struct, gc=False):
    type: str
    requestId: str | None = None
    text: str | None = None
    is_error: bool = False


_decode = msgspec.json.Decoder(Frame).decode


class Recorder:
    """Matches every frame that carries a call's ``requestId`` to the call's send time."""

    def __init__(self) -> None:
        self.sent: dict[str, int] = {}  # requestId -> time.time_ns() at send
        self.screens: dict[str, list[int]] = {}  # requestId -> quote_ready latencies, ns
        self.deliveries = 0
        self.state_latencies: list[int] = []  # session_state_updated, ns
        self.results = 0
        self.errors: list[bytes] = []  # error frames and is_error results
        self.last_frame = time.monotonic()

    def on_text(self, payload: bytes, now: int) -> None:
        self.last_frame = time.monotonic()
        frame = _decode(payload)
        if frame.type == "error":
            self.errors.append(payload[:300])
        sent = self.sent.get(frame.requestId) if frame.requestId else None
        rid = frame.requestId
        if sent is None or rid is None:
            return
        if frame.type == "contextual_update" and frame.text == "quote_ready":
            self.screens.setdefault(rid, []).append(now - sent)
            self.deliveries += 1
        elif frame.type == "session_state_updated":
            self.state_latencies.append(now - sent)
        elif frame.type == "client_tool_result":
            self.results += 1
            if frame.is_error:
                self.errors.append(payload[:300])


@dataclass
class Result:
    calls: int
    seconds: float
    calls_per_s: float
    results: int
    deliveries: int
    missing: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    call_p99_ms: float  # per call: the last of its session's screens
    state_p99_ms: float  # session_state_updated, per delivery
    errors: int
    closed: int
    server_cpu: float  # percent of one core, all the hub's threads
    server_ms_per_call: float  # hub CPU time per answered call
    client_cpu: float
    server_core: float  # percent busy of CPU 0, everything on it
    background: float  # busiest core just before the run


async def open_session(
    server: Server, index: int, clients: int, on_text: Any
) -> tuple[WSClient, list[WSClient]]:
    """One session: the first client creates it (and is the caller), the rest join."""
    token = hub_tokens().mint(f"bench-u{index}", ttl=7200)
    caller, sid = await create_session(ws_connect, server.ws_url(f"/ws?token={token}"), on_text)
    url = server.ws_url(f"/ws/{sid}?token={token}")
    rest = await gather_limited([ws_connect(url, on_text) for _ in range(clients - 1)], 16)
    return caller, [caller, *rest]


async def settle(rec: Recorder, quiet: float = 1.0, timeout: float = 120.0) -> None:
    """Wait until the join announcements have drained (no frame for ``quiet`` s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        if time.monotonic() - rec.last_frame >= quiet:
            return


async def bench(server: Server, args: argparse.Namespace) -> tuple[Result, list[bytes]]:
    rec = Recorder()
    sessions = await gather_limited(
        [open_session(server, i, args.clients, rec.on_text) for i in range(args.sessions)], 8
    )
    callers = [caller for caller, _ in sessions]
    sockets = [c for _, group in sessions for c in group]
    await settle(rec)
    print(
        f"{args.sessions} sessions x {args.clients} clients connected "
        f"(load average {load_average()[0]:.2f})",
        flush=True,
    )
    background = await wait_quiet((SERVER_CPU, CLIENT_CPU), timeout=args.quiet_timeout)
    gc.collect()
    gc.disable()  # no collector pauses in the generator while it measures
    pid, n, sent = server.pid, len(callers), 0
    cores0 = core_times()
    cpu0, gen0 = cpu_seconds(pid), time.process_time()
    spy = start_py_spy(pid, Path(args.profile), args.duration) if args.profile else None
    start = time.monotonic()
    end = start + args.duration
    while (now := time.monotonic()) < end:
        for _ in range(int(args.rate * (now - start)) - sent):
            rid = b"tc-%d" % sent
            rec.sent[rid.decode()] = time.time_ns()
            callers[sent % n].send_text(CALL % (rid, rid, 1 + sent % 100))
            sent += 1
        await asyncio.sleep(TICK)
    send_seconds = time.monotonic() - start
    expected = sent * args.clients
    deadline = time.monotonic() + args.drain
    while time.monotonic() < deadline:
        if rec.deliveries >= expected and rec.results >= sent:
            break
        await asyncio.sleep(0.01)
    wall = time.monotonic() - start
    gc.enable()
    if spy is not None:
        spy.wait()
        print(f"profile: {args.profile}")
    server_seconds = cpu_seconds(pid) - cpu0
    client_cpu = (time.process_time() - gen0) / wall * 100
    lat = sorted(x for xs in rec.screens.values() for x in xs)
    whole = sorted(max(xs) for xs in rec.screens.values() if len(xs) == args.clients)
    state = sorted(rec.state_latencies)
    closed = sum(1 for c in sockets if c.closed.done())
    for client in sockets:
        client.close()
    result = Result(
        calls=sent,
        seconds=round(send_seconds, 3),
        calls_per_s=sent / send_seconds,
        results=rec.results,
        deliveries=rec.deliveries,
        missing=max(0, expected - rec.deliveries),
        p50_ms=percentile(lat, 50) / 1e6,
        p99_ms=percentile(lat, 99) / 1e6,
        max_ms=lat[-1] / 1e6 if lat else float("nan"),
        call_p99_ms=percentile(whole, 99) / 1e6,
        state_p99_ms=percentile(state, 99) / 1e6,
        errors=len(rec.errors),
        closed=closed,
        server_cpu=server_seconds / wall * 100,
        server_ms_per_call=server_seconds / rec.results * 1e3 if rec.results else float("nan"),
        client_cpu=client_cpu,
        server_core=core_busy(cores0, SERVER_CPU),
        background=background,
    )
    return result, rec.errors[:5]


HEADERS = [
    "calls/s", "results", "deliveries", "missing", "p50 ms", "p99 ms", "max ms",
    "call p99", "state p99", "errors", "closed", "srv cpu%", "srv ms/call", "gen cpu%",
    "core0%", "bg%",
]  # fmt: skip


def row(r: Result) -> list[object]:
    return [
        r.calls_per_s, r.results, r.deliveries, r.missing, r.p50_ms, r.p99_ms, r.max_ms,
        r.call_p99_ms, r.state_p99_ms, r.errors, r.closed, r.server_cpu, r.server_ms_per_call,
        r.client_cpu, r.server_core, r.background,
    ]  # fmt: skip


async def main(args: argparse.Namespace) -> int:
    pin(CLIENT_CPU)
    raise_nofile(65536)
    server = hub_server(
        pythonpath=args.hub_pythonpath, env=dict(kv.split("=", 1) for kv in args.env)
    )
    server.start()
    try:
        result, first_errors = await bench(server, args)
    finally:
        server.stop()
    print("\n" + table(HEADERS, [row(result)]))
    for error in first_errors:
        print(f"error: {error[:200]!r}")
    path = write_results(
        "toolcalls",
        {
            "argv": sys.argv[1:],
            "args": vars(args),
            "result": asdict(result),
            "first_errors": [e.decode("utf-8", "replace") for e in first_errors],
            "server_log": str(server.log),
        },
    )
    print(f"\nresults: {path}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rate", type=int, default=1000, help="tool calls/s, all sessions together")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of calling")
    p.add_argument("--drain", type=float, default=5.0, help="seconds to wait for late frames")
    p.add_argument("--sessions", type=int, default=100)
    p.add_argument("--clients", type=int, default=10, help="clients per session, caller included")
    p.add_argument(
        "--quiet-timeout",
        type=float,
        default=30.0,
        help="seconds to wait, before calling, for both cores to be under 20%% busy",
    )
    p.add_argument("--env", action="append", default=[], help="KEY=VALUE for the hub")
    p.add_argument("--hub-pythonpath", help="PYTHONPATH for the hub (a scratch copy)")
    p.add_argument("--profile", help="py-spy the hub while calling: OUT.svg|.json|.txt")
    return p.parse_args(argv)


if __name__ == "__main__":
    use_uvloop()
    raise SystemExit(asyncio.run(main(parse_args())))
