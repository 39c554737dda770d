"""Fan-out benchmark: how many deliveries per second a server sustains.

Server on CPU 0, this load generator on CPU 1. Two shapes: (a) 100 sessions x 10
clients, (b) 1 session x 1,000 clients. In each session one client publishes
``contextual_update`` frames carrying their send time; every client of the session
(the sender included) receives each one: a *delivery*. The publish rate rises step
by step until a step's p99 delivery latency passes 50 ms or a delivery is lost (or
a socket is closed, or the server answers an error); the highest step that passed
is the sustained figure.

    python bench/fanout.py                               # hub and baseline, shapes a and b
    python bench/fanout.py --server hub --shape a --duration 5 --start 10000 --step 5000
    python bench/fanout.py --server hub --hub-pythonpath /tmp/scratch-hub   # another copy

Prints a table per run and writes bench/results/fanout-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import msgspec

sys.path.insert(0, str(Path(__file__).resolve().parent))

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
    git_revision,
    header_lines,
    hub_server,
    hub_tokens,
    lib_connect,
    load_average,
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

SHAPES = {"a": (100, 10), "b": (1, 1000)}
# Per-connection and per-user limits raised so that they never decide the result: in
# shape (b) one publisher sends up to 200 frames/s (the default limit is 200/s), and one
# user holds all 1,000 sockets of the session (the default cap is 64).
HUB_ENV = {
    "COMPANION_RATE_LIMIT_PER_SECOND": "5000",
    "COMPANION_RATE_LIMIT_BURST": "10000",
    "COMPANION_MAX_CONNECTIONS_PER_USER": "5000",
}
P99_LIMIT_MS = 50.0
TICK = 0.002
MARK = b'"contextual_update"'
ERROR_MARK = b'"type":"error"'


class Stamp(msgspec.Struct, gc=False):
    t: int
    k: int


class Delivery(msgspec.Struct, gc=False):
    data: Stamp


_decode = msgspec.json.Decoder(Delivery).decode


class Recorder:
    """Counts and times every delivery, by step. One callback for all sockets."""

    def __init__(self) -> None:
        self.received: dict[int, int] = {}
        self.latencies: dict[int, list[int]] = {}
        self.frames = 0
        self.errors: list[bytes] = []
        self.last_frame = time.monotonic()

    def on_text(self, payload: bytes, now: int) -> None:
        self.frames += 1
        if MARK in payload:
            stamp = _decode(payload).data
            k = stamp.k
            self.received[k] = self.received.get(k, 0) + 1
            self.latencies.setdefault(k, []).append(now - stamp.t)
        elif ERROR_MARK in payload:
            self.errors.append(payload[:300])
        self.last_frame = time.monotonic()


@dataclass
class Step:
    target: int  # deliveries/s asked for
    publishes: int
    expected: int
    received: int
    seconds: float
    deliveries_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    lost: int
    closed: int
    errors: int
    server_cpu: float  # percent of one core
    server_us_per_delivery: float  # server CPU time per delivery (steadier on a busy box)
    client_cpu: float
    server_core: float  # percent busy of the server's core, everything on it included
    client_core: float
    background: float  # busiest core, percent, just before the step (other people's work)
    passed: bool
    attempt: int = 1


@dataclass
class Run:
    server: str
    shape: str
    sessions: int
    clients: int
    connect_seconds: float
    steps: list[Step] = field(default_factory=list)
    best: Step | None = None
    note: str = ""
    fixed: Step | None = None  # the step at ``--fixed-rate``: CPU per delivery at that rate


class Fleet:
    """The connected clients of every session, and their publishers."""

    def __init__(
        self, server: Server, kind: str, sessions: int, clients: int, connect: Any = ws_connect
    ) -> None:
        self.ws_connect = connect
        self.server = server
        self.kind = kind
        self.sessions = sessions
        self.clients = clients
        self.recorder = Recorder()
        self.publishers: list[WSClient] = []
        self.all: list[WSClient] = []

    @property
    def closed(self) -> int:
        return sum(1 for c in self.all if c.closed.done())

    async def connect(self, concurrency: int = 8) -> None:
        await gather_limited([self._session(i) for i in range(self.sessions)], concurrency)

    async def _session(self, index: int) -> None:
        on_text = self.recorder.on_text
        if self.kind == "hub":
            token = hub_tokens().mint(f"bench-u{index}", ttl=7200)
            first_client, sid = await create_session(
                self.ws_connect, self.server.ws_url(f"/ws?token={token}"), on_text
            )
            url = self.server.ws_url(f"/ws/{sid}?token={token}")
        else:
            first_client = await self.ws_connect(
                self.server.ws_url(f"/ws?session_id=s{index}"), on_text
            )
            url = self.server.ws_url(f"/ws?session_id=s{index}")
        self.publishers.append(first_client)
        self.all.append(first_client)
        rest = await gather_limited([ws_connect(url, on_text) for _ in range(self.clients - 1)], 64)
        self.all.extend(rest)

    async def settle(self, quiet: float = 1.0, timeout: float = 180.0) -> None:
        """Wait until the join announcements have drained (no frame for ``quiet`` s)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            await asyncio.sleep(0.2)
            if time.monotonic() - self.recorder.last_frame >= quiet:
                return
        raise RuntimeError("the server kept sending after every client joined")

    def close(self) -> None:
        for client in self.all:
            client.close()


async def run_step(
    fleet: Fleet, k: int, target: int, duration: float, drain: float, quiet_timeout: float
) -> Step:
    rec = fleet.recorder
    publishers = fleet.publishers
    per_publish = fleet.clients
    rate = target / per_publish  # publishes per second, all sessions together
    closed_before = fleet.closed
    errors_before = len(rec.errors)
    sent = 0
    n = len(publishers)
    head = b'{"type":"contextual_update","text":"bench","data":{"t":'
    tail = b',"k":%d}}' % k
    pid = fleet.server.pid
    background = await wait_quiet((SERVER_CPU, CLIENT_CPU), timeout=quiet_timeout)
    # No collector pauses in the generator while it measures (it collects between steps).
    gc.collect()
    gc.disable()
    cores0 = core_times()
    cpu0, gen0, wall0 = cpu_seconds(pid), time.process_time(), time.monotonic()
    start = time.monotonic()
    end = start + duration
    while True:
        now = time.monotonic()
        if now >= end:
            break
        due = int(rate * (now - start)) - sent
        for _ in range(due):
            publishers[sent % n].send_text(b"%s%d%s" % (head, time.time_ns(), tail))
            sent += 1
        await asyncio.sleep(TICK)
    send_seconds = time.monotonic() - start
    expected = sent * per_publish
    deadline = time.monotonic() + drain
    while rec.received.get(k, 0) < expected and time.monotonic() < deadline:
        if fleet.closed > closed_before:
            break
        await asyncio.sleep(0.01)
    wall = time.monotonic() - wall0
    gc.enable()
    server_seconds = cpu_seconds(pid) - cpu0
    server_cpu = server_seconds / wall * 100
    client_cpu = (time.process_time() - gen0) / wall * 100
    server_core = core_busy(cores0, SERVER_CPU)
    client_core = core_busy(cores0, CLIENT_CPU)
    received = rec.received.get(k, 0)
    lat = sorted(rec.latencies.pop(k, []))
    lost = max(0, expected - received)
    closed = fleet.closed - closed_before
    errors = len(rec.errors) - errors_before
    p99 = percentile(lat, 99) / 1e6
    step = Step(
        target=target,
        publishes=sent,
        expected=expected,
        received=received,
        seconds=round(send_seconds, 3),
        deliveries_per_s=received / send_seconds,
        p50_ms=percentile(lat, 50) / 1e6,
        p99_ms=p99,
        max_ms=(lat[-1] / 1e6) if lat else float("nan"),
        lost=lost,
        closed=closed,
        errors=errors,
        server_cpu=server_cpu,
        server_us_per_delivery=server_seconds / received * 1e6 if received else float("nan"),
        client_cpu=client_cpu,
        server_core=server_core,
        client_core=client_core,
        background=background,
        passed=bool(lat) and lost == 0 and closed == 0 and errors == 0 and p99 <= P99_LIMIT_MS,
    )
    return step


STEP_HEADERS = [
    "target/s", "deliv/s", "p50 ms", "p99 ms", "max ms", "lost", "closed", "err",
    "srv cpu%", "srv us/d", "gen cpu%", "core0%", "core1%", "bg%", "ok",
]  # fmt: skip


def step_row(step: Step) -> list[object]:
    return [
        step.target, step.deliveries_per_s, step.p50_ms, step.p99_ms, step.max_ms,
        step.lost, step.closed, step.errors, step.server_cpu, step.server_us_per_delivery,
        step.client_cpu, step.server_core, step.client_core, step.background,
        "yes" if step.passed else "NO",
    ]  # fmt: skip


def ladder(start: int, step: int, growth: float, limit: int) -> list[int]:
    """The rates to try: ``start + n*step`` if ``step`` is set, else ``start * growth**n``
    (rounded to 500/s)."""
    if step > 0:
        return list(range(start, limit + 1, step))
    out: list[int] = []
    rate = float(start)
    while rate <= limit:
        value = int(round(rate / 500) * 500) or 500
        if not out or value > out[-1]:
            out.append(value)
        rate *= growth
    return out


def refinement(passed: int, failed: int, parts: int = 4) -> list[int]:
    """Rates between the last pass and the first failure, for a finer figure."""
    width = (failed - passed) / parts
    return sorted({int(passed + width * i) for i in range(1, parts)} - {passed, failed})


async def bench_one(server: Server, kind: str, shape: str, args: argparse.Namespace) -> Run:
    sessions, clients = SHAPES[shape]
    connect = lib_connect if args.client == "websockets" else ws_connect
    fleet = Fleet(server, kind, sessions, clients, connect)
    t0 = time.monotonic()
    await fleet.connect()
    await fleet.settle()
    run = Run(server.name, shape, sessions, clients, round(time.monotonic() - t0, 2))
    print(
        f"\n== {server.name}, shape ({shape}): {sessions} sessions x {clients} clients "
        f"(connected in {run.connect_seconds:.1f}s, load average {load_average()[0]:.2f})",
        flush=True,
    )
    print(header_lines(STEP_HEADERS), flush=True)
    if args.profile:
        await profile(fleet, server, args)
        fleet.close()
        return run
    k = 0
    best: Step | None = None
    if args.fixed_rate:
        # CPU per delivery at one rate for every server (the 16,000/s): one step,
        # counted on the ladder too when it passes.
        k += 1
        gc.collect()
        fixed = await run_step(
            fleet, k, args.fixed_rate, args.duration, args.drain, args.quiet_timeout
        )
        run.steps.append(fixed)
        run.fixed = fixed
        print(row_line(STEP_HEADERS, step_row(fixed)) + "  (fixed rate)", flush=True)
        if fixed.passed:
            best = fixed
        await asyncio.sleep(args.pause)
    targets = [
        t
        for t in ladder(args.start, args.step, args.growth, args.max)
        if best is None or t > best.target
    ]
    refined = False
    i = 0
    while i < len(targets):
        target = targets[i]
        step: Step | None = None
        for attempt in range(1, args.retries + 2):
            k += 1
            gc.collect()
            step = await run_step(fleet, k, target, args.duration, args.drain, args.quiet_timeout)
            step.attempt = attempt
            run.steps.append(step)
            print(row_line(STEP_HEADERS, step_row(step)), flush=True)
            if step.passed or step.closed or fleet.closed:
                break
            await asyncio.sleep(args.pause * 2)
        assert step is not None
        if fleet.closed:
            run.note = f"{fleet.closed} sockets closed by the server"
            if fleet.recorder.errors:
                run.note += f"; last error: {fleet.recorder.errors[-1][:200]!r}"
            break
        if step.passed:
            best = step
            i += 1
            await asyncio.sleep(args.pause)
            continue
        if refined or best is None or args.no_refine:
            break
        # Refine between the last pass and this failure.
        refined = True
        targets = refinement(best.target, target, args.refine_parts)
        i = 0
        await asyncio.sleep(args.pause)
    run.best = best
    fleet.close()
    return run


async def profile(fleet: Fleet, server: Server, args: argparse.Namespace) -> None:
    """One step at ``--profile-rate`` with py-spy sampling the server (from this core)."""
    out = Path(args.profile)
    fmt = {".svg": "flamegraph", ".json": "speedscope"}.get(out.suffix, "raw")
    py_spy = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if py_spy is None:
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    spy = await asyncio.create_subprocess_exec(
        py_spy,
        "record", "--pid", str(server.pid), "--duration", str(int(args.duration)),
        "--rate", "250", "--nonblocking", "--format", fmt, "--output", str(out),
        stdout=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    await asyncio.sleep(0.5)
    step = await run_step(fleet, 1, args.profile_rate, args.duration - 1, args.drain, 0)
    print(row_line(STEP_HEADERS, step_row(step)), flush=True)
    await spy.wait()
    print(f"profile: {out}")


def summary(runs: list[Run]) -> str:
    rows = []
    for run in runs:
        b = run.best
        rows.append(
            [
                run.server,
                f"({run.shape}) {run.sessions}x{run.clients}",
                b.deliveries_per_s if b else 0.0,
                b.p50_ms if b else float("nan"),
                b.p99_ms if b else float("nan"),
                b.server_cpu if b else float("nan"),
                b.client_cpu if b else float("nan"),
                run.note or "",
            ]
        )
    headers = ["server", "shape", "sustained deliv/s", "p50 ms", "p99 ms", "srv cpu%",
               "gen cpu%", "note"]  # fmt: skip
    return table(headers, rows)


async def main(args: argparse.Namespace) -> int:
    commit = git_revision()  # the code under test is the code at the start
    pin(CLIENT_CPU)
    raise_nofile(65536)
    runs: list[Run] = []
    servers = ["hub", "baseline"] if args.server == "both" else [args.server]
    shapes = ["a", "b"] if args.shape == "both" else [args.shape]
    for kind in servers:
        for shape in shapes:
            if kind == "hub":
                env = {**HUB_ENV, **dict(kv.split("=", 1) for kv in args.env)}
                server = hub_server(pythonpath=args.hub_pythonpath, env=env)
            else:
                server = baseline_server(uvloop=args.baseline_uvloop)
            server.start()
            try:
                runs.append(await bench_one(server, kind, shape, args))
            finally:
                server.stop()
            await asyncio.sleep(0.5)
    print("\n" + summary(runs))
    path = write_results(
        "fanout",
        {
            "commit": commit,
            "argv": sys.argv[1:],
            "p99_limit_ms": P99_LIMIT_MS,
            "runs": [asdict(r) for r in runs],
        },
    )
    print(f"\nresults: {path}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--server", choices=["hub", "baseline", "both"], default="both")
    p.add_argument("--shape", choices=["a", "b", "both"], default="both")
    p.add_argument("--start", type=int, default=2_000, help="first step, deliveries/s")
    p.add_argument(
        "--growth", type=float, default=1.25, help="each step's rate over the last one's"
    )
    p.add_argument(
        "--step", type=int, default=0, help="a fixed increase per step instead, deliveries/s"
    )
    p.add_argument("--max", type=int, default=200_000, help="last step, deliveries/s")
    p.add_argument("--duration", type=float, default=5.0, help="seconds of publishing per step")
    p.add_argument("--drain", type=float, default=3.0, help="seconds to wait for late frames")
    p.add_argument("--pause", type=float, default=0.5, help="seconds between steps")
    p.add_argument("--retries", type=int, default=1, help="re-runs of a failed step (noise)")
    p.add_argument(
        "--quiet-timeout",
        type=float,
        default=120.0,
        help="seconds to wait, before each step, for both cores to be under 20%% busy",
    )
    p.add_argument("--no-refine", action="store_true", help="skip the finer steps after a fail")
    p.add_argument(
        "--refine-parts",
        type=int,
        default=4,
        help="after the first failure, try the range from the last pass in this many parts",
    )
    p.add_argument(
        "--fixed-rate",
        type=int,
        default=0,
        help="first, one step at this many deliveries/s (CPU per delivery at a fixed rate)",
    )
    p.add_argument("--profile", help="py-spy the server during one step: OUT.svg|.json|.txt")
    p.add_argument("--profile-rate", type=int, default=10_000, help="deliveries/s when profiling")
    p.add_argument(
        "--client",
        choices=["lean", "websockets"],
        default="lean",
        help="load generator sockets: the lean raw-transport client, or the websockets library",
    )
    p.add_argument("--hub-pythonpath", help="PYTHONPATH for the hub (a scratch copy)")
    p.add_argument("--env", action="append", default=[], help="KEY=VALUE for the hub")
    p.add_argument("--baseline-uvloop", action="store_true", help="baseline on uvloop")
    return p.parse_args(argv)


if __name__ == "__main__":
    use_uvloop()
    raise SystemExit(asyncio.run(main(parse_args())))
