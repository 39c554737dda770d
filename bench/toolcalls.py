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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fanout
from common import (
    CLIENT_CPU,
    SERVER_CPU,
    Server,
    WSClient,
    baseline_server,
    core_busy,
    core_times,
    cpu_seconds,
    create_session,
    gather_limited,
    header_lines,
    hub_server,
    hub_tokens,
    load_average,
    peer_connect,
    percentile,
    pin,
    raise_nofile,
    row_line,
    socketio_server,
    start_py_spy,
    table,
    use_uvloop,
    wait_quiet,
    write_results,
    ws_connect,
)

TICK = 0.002
P99_LIMIT_MS = 20.0
CALL = (
    b'{"type":"client_tool_call","requestId":"%s","client_tool_call":{"tool_name":'
    b'"get_shipping_quotes","tool_call_id":"%s","parameters":'
    b'{"from_zip":"94105","to_zip":"10001","weight":%d}}}'
)

#: A call's four broadcasts as the hub sends them (docs/protocol.md section 13; taken
#: from the hub, seq left out): what a peer's caller sends for each call, and the peer
#: fans out to the room. ``@RID@`` is the call's id.
_SID = '"session_id":"f0ba50461aac435c8b64379874d4bca5"'
_QUOTES = (
    '{"shipping_details":{"from":"94105","to":"10001","weight_lbs":42.0},"quotes":['
    '{"quote_id":"q_af35c6f68b","carrier":"USPS","service":"Ground Advantage","cost":33.15,'
    '"days":6},{"quote_id":"q_e23311871a","carrier":"UPS","service":"Ground","cost":46.7,'
    '"days":5},{"quote_id":"q_3211f2bfd9","carrier":"FedEx","service":"Ground","cost":47.26,'
    '"days":5},{"quote_id":"q_99d0355eb1","carrier":"FedEx","service":"Express Saver",'
    '"cost":85.8,"days":4},{"quote_id":"q_287b47c486","carrier":"UPS","service":"2nd Day Air",'
    '"cost":110.3,"days":2}]'
)
PEER_FRAMES = tuple(
    frame.encode()
    for frame in (
        '{"type":"tool_call_started","tool_call_id":"@RID@","tool_name":"get_shipping_quotes",'
        f'{_SID},"timestamp":1796697481197,"requestId":"@RID@"}}',
        '{"type":"session_state_updated","patch":' + _QUOTES + ',"selected_option":null,'
        '"label":null,"ui":{"current_step":"quotes"},"tasks":[{"task_id":'
        '"66492cf3c7cc46519e650a321bcd7ba4","name":"shipment","status":"active","started_at":'
        '1796697481198,"ended_at":null}]},"version":1,"sender":"axfN2caMFpYJ",'
        f'{_SID},"timestamp":1796697481198,"requestId":"@RID@"}}',
        '{"type":"contextual_update","text":"quote_ready","data":' + _QUOTES + "},"
        f'"sender":"axfN2caMFpYJ",{_SID},"timestamp":1796697481198,"requestId":"@RID@"}}',
        '{"type":"tool_call_finished","tool_call_id":"@RID@","tool_name":"get_shipping_quotes",'
        f'"is_error":false,"duration_ms":1,{_SID},"timestamp":1796697481198,'
        '"requestId":"@RID@"}',
    )
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
    passed: bool = False  # p99 <= P99_LIMIT_MS, every delivery and result, no error
    target: float = 0.0  # calls/s asked for
    attempt: int = 1


async def open_session(
    server: Server, kind: str, index: int, clients: int, on_text: Any
) -> tuple[WSClient, list[WSClient]]:
    """One session: the first client creates it (and is the caller), the rest join. On a
    peer (bare ``websockets``, socket.io) the session is a room."""
    if kind == "hub":
        token = hub_tokens().mint(f"bench-u{index}", ttl=7200)
        caller, sid = await create_session(ws_connect, server.ws_url(f"/ws?token={token}"), on_text)
        url = server.ws_url(f"/ws/{sid}?token={token}")
        connect = ws_connect
    else:
        connect = peer_connect(kind)
        url = server.room_url(f"s{index}")
        caller = await connect(url, on_text)
    rest = await gather_limited([connect(url, on_text) for _ in range(clients - 1)], 16)
    return caller, [caller, *rest]


async def settle(rec: Recorder, quiet: float = 1.0, timeout: float = 120.0) -> None:
    """Wait until the join announcements have drained (no frame for ``quiet`` s)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        if time.monotonic() - rec.last_frame >= quiet:
            return


class Fleet:
    """The sessions of one server, connected once for every step."""

    def __init__(self, server: Server, kind: str, sessions: int, clients: int) -> None:
        self.server, self.kind, self.clients = server, kind, clients
        self.sessions = sessions
        self.rec = Recorder()
        self.steps = 0  # call ids are unique over the steps (a repeated id is a replay)
        self.callers: list[WSClient] = []
        self.sockets: list[WSClient] = []

    async def connect(self) -> None:
        groups = await gather_limited(
            [
                open_session(self.server, self.kind, i, self.clients, self.rec.on_text)
                for i in range(self.sessions)
            ],
            8,
        )
        self.callers = [caller for caller, _ in groups]
        self.sockets = [c for _, group in groups for c in group]
        await settle(self.rec)

    @property
    def closed(self) -> int:
        return sum(1 for c in self.sockets if c.closed.done())

    def close(self) -> None:
        for client in self.sockets:
            client.close()


def peer_call(caller: WSClient, rid: bytes) -> None:
    """A peer's share of a call: the caller sends the hub's four frames of it, which the
    peer fans out to the room."""
    for frame in PEER_FRAMES:
        caller.send_text(frame.replace(b"@RID@", rid))


async def call_step(
    fleet: Fleet, rate: float, args: argparse.Namespace, profile: str | None = None
) -> Result:
    """``rate`` calls/s for ``args.duration`` seconds over the fleet's callers, then up to
    ``args.drain`` seconds for the rest. The recorder starts afresh."""
    rec = fleet.rec = Recorder()
    fleet.steps += 1
    prefix = b"tc%d-" % fleet.steps
    for client in fleet.sockets:
        client.on_text = rec.on_text
    hub = fleet.kind == "hub"
    closed_before = fleet.closed
    background = await wait_quiet((SERVER_CPU, CLIENT_CPU), timeout=args.quiet_timeout)
    gc.collect()
    gc.disable()  # no collector pauses in the generator while it measures
    pid, callers, sent = fleet.server.pid, fleet.callers, 0
    n = len(callers)
    cores0 = core_times()
    cpu0, gen0 = cpu_seconds(pid), time.process_time()
    spy = start_py_spy(pid, Path(profile), args.duration) if profile else None
    start = time.monotonic()
    end = start + args.duration
    while (now := time.monotonic()) < end:
        for _ in range(int(rate * (now - start)) - sent):
            rid = prefix + b"%d" % sent
            rec.sent[rid.decode()] = time.time_ns()
            if hub:
                callers[sent % n].send_text(CALL % (rid, rid, 1 + sent % 100))
            else:
                peer_call(callers[sent % n], rid)
            sent += 1
        await asyncio.sleep(TICK)
    send_seconds = time.monotonic() - start
    expected = sent * fleet.clients
    results = sent if hub else 0  # a peer answers no result
    deadline = time.monotonic() + args.drain
    while time.monotonic() < deadline:
        if rec.deliveries >= expected and rec.results >= results:
            break
        await asyncio.sleep(0.01)
    wall = time.monotonic() - start
    gc.enable()
    if spy is not None:
        spy.wait()
        print(f"profile: {profile}")
    server_seconds = cpu_seconds(pid) - cpu0
    client_cpu = (time.process_time() - gen0) / wall * 100
    lat = sorted(x for xs in rec.screens.values() for x in xs)
    whole = sorted(max(xs) for xs in rec.screens.values() if len(xs) == fleet.clients)
    state = sorted(rec.state_latencies)
    per_call = rec.results if hub else sent
    return Result(
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
        closed=fleet.closed - closed_before,
        server_cpu=server_seconds / wall * 100,
        server_ms_per_call=server_seconds / per_call * 1e3 if per_call else float("nan"),
        client_cpu=client_cpu,
        server_core=core_busy(cores0, SERVER_CPU),
        background=background,
        passed=bool(lat)
        and rec.deliveries >= expected
        and rec.results >= results
        and not rec.errors
        and fleet.closed == closed_before
        and percentile(lat, 99) / 1e6 <= P99_LIMIT_MS,
        target=rate,
    )


async def bench(server: Server, args: argparse.Namespace) -> tuple[Result, list[bytes]]:
    """One run at ``args.rate`` on the hub (the script's default)."""
    fleet = Fleet(server, "hub", args.sessions, args.clients)
    await fleet.connect()
    print(
        f"{args.sessions} sessions x {args.clients} clients connected "
        f"(load average {load_average()[0]:.2f})",
        flush=True,
    )
    try:
        result = await call_step(fleet, args.rate, args, args.profile)
    finally:
        fleet.close()
    return result, fleet.rec.errors[:5]


@dataclass
class Ladder:
    """The highest rate whose step passed (p99 <= 20 ms, nothing missing or refused)."""

    server: str
    steps: list[Result] = field(default_factory=list)
    best: Result | None = None


async def ladder_one(server: Server, kind: str, args: argparse.Namespace) -> Ladder:
    """The calls/s ladder from ``args.start`` by ``args.growth``; after the first failure
    (re-run ``args.retries`` times) the range from the last pass in ``args.refine_parts``."""
    fleet = Fleet(server, kind, args.sessions, args.clients)
    await fleet.connect()
    print(
        f"\n== {server.name}: tool calls, {args.sessions} sessions x {args.clients} clients "
        f"(load average {load_average()[0]:.2f})",
        flush=True,
    )
    print(header_lines(HEADERS, 7), flush=True)
    run = Ladder(server.name)
    targets = sorted({max(10, round(t / 10) * 10) for t in (args.start * args.growth**i
                      for i in range(64)) if t <= args.max})  # fmt: skip
    refined, i = False, 0
    try:
        while i < len(targets):
            step: Result | None = None
            for attempt in range(args.retries + 1):
                step = await call_step(fleet, targets[i], args)
                step.attempt = attempt + 1
                run.steps.append(step)
                print(row_line(HEADERS, row(step), 7), flush=True)
                if step.passed or fleet.closed:
                    break
            assert step is not None
            if step.passed:
                if run.best is None or step.target > run.best.target:
                    run.best = step
                i += 1
                continue
            if refined or run.best is None or fleet.closed:
                break
            refined, failed, i = True, targets[i], 0
            targets = fanout.refinement(int(run.best.target), failed, args.refine_parts)
    finally:
        fleet.close()
    return run


HEADERS = [
    "target", "calls/s", "results", "deliveries", "missing", "p50 ms", "p99 ms", "max ms",
    "call p99", "state p99", "errors", "closed", "srv cpu%", "srv ms/call", "gen cpu%",
    "core0%", "bg%", "ok",
]  # fmt: skip


def row(r: Result) -> list[object]:
    return [
        r.target, r.calls_per_s, r.results, r.deliveries, r.missing, r.p50_ms, r.p99_ms, r.max_ms,
        r.call_p99_ms, r.state_p99_ms, r.errors, r.closed, r.server_cpu, r.server_ms_per_call,
        r.client_cpu, r.server_core, r.background, "yes" if r.passed else "NO",
    ]  # fmt: skip


def make_server(kind: str, args: argparse.Namespace) -> Server:
    if kind == "hub":
        env = dict(kv.split("=", 1) for kv in args.env)
        return hub_server(pythonpath=args.hub_pythonpath, env=env)
    if kind == "socketio":
        return socketio_server()
    return baseline_server(uvloop=args.baseline_uvloop)


async def main(args: argparse.Namespace) -> int:
    pin(CLIENT_CPU)
    raise_nofile(65536)
    if args.ladder:
        kinds = ["hub", "baseline", "socketio"] if args.server == "all" else [args.server]
        runs = []
        for kind in kinds:
            server = make_server(kind, args).start()
            try:
                runs.append(await ladder_one(server, kind, args))
            finally:
                server.stop()
        for run in runs:
            best = run.best
            print(
                f"{run.server}: "
                + (f"{best.calls_per_s:,.0f} calls/s, p99 {best.p99_ms:.1f} ms" if best else "-")
            )
        path = write_results(
            "toolcalls",
            {"argv": sys.argv[1:], "args": vars(args), "ladders": [asdict(r) for r in runs]},
        )
        print(f"\nresults: {path}")
        return 0
    server = make_server(args.server, args) if args.server != "hub" else None
    if server is not None:
        raise SystemExit("one rate runs on the hub; --ladder for the peers")
    server = make_server("hub", args)
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
    p.add_argument(
        "--ladder",
        action="store_true",
        help="the highest calls/s with p99 <= 20 ms: rates from --start by --growth",
    )
    p.add_argument(
        "--server",
        choices=["hub", "baseline", "socketio", "all"],
        default="hub",
        help="with --ladder: the peers fan out a call's four frames (sent by the caller)",
    )
    p.add_argument("--start", type=int, default=150, help="--ladder: first calls/s")
    p.add_argument("--growth", type=float, default=1.3, help="--ladder: each rate over the last")
    p.add_argument("--max", type=int, default=5000, help="--ladder: last calls/s")
    p.add_argument("--retries", type=int, default=1, help="--ladder: re-runs of a failed step")
    p.add_argument("--refine-parts", type=int, default=3)
    p.add_argument("--baseline-uvloop", action="store_true", help="baseline on uvloop")
    return p.parse_args(argv)


if __name__ == "__main__":
    use_uvloop()
    raise SystemExit(asyncio.run(main(parse_args())))
