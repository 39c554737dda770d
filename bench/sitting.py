"""One sitting, every figure of issue 13: the hub beside bare ``websockets``.

Runs, one after the other on this machine (server on CPU 0, generator on CPU 1, a
fresh server for each part), the hub and the baseline (bench/baseline_websockets.py):

1. fan-out, shapes (a) 100 x 10 and (b) 1 x 1000 (bench/fanout.py): first one step at
   ``--fixed-rate`` (16,000 deliveries/s) for the server's CPU per delivered frame,
   then the ladder for the saturation (the highest rate with p99 <= 50 ms and nothing
   lost);
2. 5,000 connections (bench/idle.py): the time to admit them all (on the hub: JWT
   verified, join rules, welcome, presence, ``client_joined`` committed), the
   sustained connects/s, the server's CPU per connect, then KiB per idle connection
   (``--floor``: uvicorn alone too, bench/uvicorn_floor.py, the hub's floor);
3. the hub only: resuming a 1,000-event gap (bench/replay.py), from connecting with
   ``last_seq`` to the ``resumed`` frame right after the last replayed event (the
   lean client counting frames; ``--resume-client websockets`` decodes each).

Then prints a markdown table with the ratios hub/baseline and each goal of the issue
met or not, and writes it with the JSON to bench/results/sitting-*.{md,json}.

    python bench/sitting.py            # ~15 min
    python bench/sitting.py --fast     # coarser ladder, shorter steps: ~8 min
    python bench/sitting.py --only connect,resume --hub-pythonpath /tmp/other-hub
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fanout
import idle
import replay
from common import (
    CLIENT_CPU,
    RESULTS,
    baseline_server,
    git_revision,
    header_lines,
    hub_server,
    load_average,
    pin,
    raise_nofile,
    row_line,
    use_uvloop,
    uvicorn_floor_server,
    write_results,
)

PARTS = ("fanout", "connect", "resume")

# The goals of issue 13.
CPU_RATIO = {"a": 1.2, "b": 1.1}
CONNECT_TIME_RATIO = 2.0
CONNECTS_PER_S = 2000.0
IDLE_KIB = 16.0
RESUME_MS = 20.0


def _server(kind: str, args: argparse.Namespace, env: dict[str, str] | None = None) -> Any:
    if kind == "uvicorn-floor":
        return uvicorn_floor_server()
    if kind == "hub":
        extra = dict(kv.split("=", 1) for kv in args.env)
        return hub_server(pythonpath=args.hub_pythonpath, env={**(env or {}), **extra})
    return baseline_server(uvloop=args.baseline_uvloop)


def fanout_args(args: argparse.Namespace) -> argparse.Namespace:
    """bench/fanout.py's options for the sitting's ladder."""
    argv = [
        "--fixed-rate", str(args.fixed_rate),
        "--start", str(args.start),
        "--growth", str(args.growth),
        "--duration", str(args.duration),
        "--drain", str(args.drain),
        "--retries", str(args.retries),
        "--refine-parts", str(args.refine_parts),
        "--quiet-timeout", str(args.quiet_timeout),
    ]  # fmt: skip
    return fanout.parse_args(argv)


async def run_fanout(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    fargs = fanout_args(args)
    for shape in ("a", "b"):
        for kind in ("hub", "baseline"):
            server = _server(kind, args, fanout.HUB_ENV).start()
            try:
                run = await fanout.bench_one(server, kind, shape, fargs)
            finally:
                server.stop()
            out[f"{kind}/{shape}"] = asdict(run)
            await asyncio.sleep(1.0)
    return out


async def run_connect(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    kinds = ("hub", "baseline", "uvicorn-floor") if args.floor else ("hub", "baseline")
    for kind in kinds:
        server = _server(kind, args).start()
        try:
            result = await idle.bench_one(
                server,
                kind,
                connections=args.connections,
                per_session=10,
                concurrency=args.concurrency,
                settle=args.settle,
            )
        finally:
            server.stop()
        print(row_line(idle.HEADERS, idle.row(result), 6), flush=True)
        out[kind] = asdict(result)
        await asyncio.sleep(1.0)
    return out


async def run_resume(args: argparse.Namespace) -> dict[str, Any]:
    rargs = argparse.Namespace(
        events=args.gap + 200,
        gap=args.gap,
        runs=args.resume_runs,
        payload=200,
        history=2000,
        client=args.resume_client,
    )
    if args.hub_pythonpath or args.env:
        raise SystemExit("--hub-pythonpath and --env are not passed to the resume part yet")
    return await replay.run(rargs)


# ---------------------------------------------------------------- the table


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None or value != value:
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _ratio(hub: float | None, base: float | None) -> float | None:
    if hub is None or base is None or not base or hub != hub or base != base:
        return None
    return hub / base


def _met(ok: bool | None) -> str:
    return "-" if ok is None else ("**met**" if ok else "unmet")


def rows(results: dict[str, Any]) -> list[list[str]]:
    """figure | hub | baseline | hub/baseline | goal | met"""
    out: list[list[str]] = []
    fan = results.get("fanout") or {}
    for shape, label in (("a", "(a) 100x10"), ("b", "(b) 1x1000")):
        hub, base = fan.get(f"hub/{shape}"), fan.get(f"baseline/{shape}")
        if hub is None or base is None:
            continue

        def sat(run: dict[str, Any]) -> float | None:
            best = run.get("best")
            return best["deliveries_per_s"] if best else None

        def sat_text(run: dict[str, Any]) -> str:
            best = run.get("best")
            if not best:
                return "< first step" + (f" ({run['note']})" if run.get("note") else "")
            return f"{best['deliveries_per_s']:,.0f} (p99 {best['p99_ms']:.1f} ms)"

        h, b = sat(hub), sat(base)
        ratio = _ratio(h, b)
        out.append(
            [
                f"{label}: saturation, deliveries/s",
                sat_text(hub),
                sat_text(base),
                _fmt(ratio, 2),
                "≥ baseline",
                _met(None if ratio is None else ratio >= 1.0),
            ]
        )

        def cpu(run: dict[str, Any]) -> float | None:
            fixed = run.get("fixed")
            if not fixed or not fixed["received"]:
                return None
            value: float = fixed["server_us_per_delivery"]
            return value

        def cpu_text(run: dict[str, Any]) -> str:
            fixed = run.get("fixed")
            if not fixed:
                return "-"
            text = _fmt(cpu(run))
            if not fixed["passed"]:
                text += f" (step failed: p99 {fixed['p99_ms']:.0f} ms, lost {fixed['lost']})"
            return text

        h, b = cpu(hub), cpu(base)
        ratio = _ratio(h, b)
        rate = (hub.get("fixed") or {}).get("target", 0)
        out.append(
            [
                f"{label}: CPU µs per delivered frame at {rate:,}/s",
                cpu_text(hub),
                cpu_text(base),
                _fmt(ratio, 2),
                f"≤ {CPU_RATIO[shape]}x baseline",
                _met(None if ratio is None else ratio <= CPU_RATIO[shape]),
            ]
        )
    conn = results.get("connect") or {}
    hub, base = conn.get("hub"), conn.get("baseline")
    if hub and base:
        n = hub["connections"]
        ratio = _ratio(hub["connect_seconds"], base["connect_seconds"])
        out.append(
            [
                f"{n:,} connects: seconds to admit all",
                _fmt(hub["connect_seconds"], 2),
                _fmt(base["connect_seconds"], 2),
                _fmt(ratio, 2),
                f"≤ {CONNECT_TIME_RATIO:g}x baseline",
                _met(None if ratio is None else ratio <= CONNECT_TIME_RATIO),
            ]
        )
        out.append(
            [
                "connects/s sustained (10th-90th percentile)",
                _fmt(hub["connects_per_s"], 0),
                _fmt(base["connects_per_s"], 0),
                _fmt(_ratio(hub["connects_per_s"], base["connects_per_s"]), 2),
                f"≥ {CONNECTS_PER_S:,.0f}/s",
                _met(hub["connects_per_s"] >= CONNECTS_PER_S),
            ]
        )
        out.append(
            [
                "server CPU ms per connect",
                _fmt(hub["server_ms_per_connect"], 2),
                _fmt(base["server_ms_per_connect"], 2),
                _fmt(_ratio(hub["server_ms_per_connect"], base["server_ms_per_connect"]), 2),
                "",
                "",
            ]
        )
        out.append(
            [
                f"{n:,} idle: KiB per connection",
                _fmt(hub["kb_per_connection"]),
                _fmt(base["kb_per_connection"]),
                _fmt(_ratio(hub["kb_per_connection"], base["kb_per_connection"]), 2),
                f"≤ {IDLE_KIB:g} KiB",
                _met(hub["kb_per_connection"] <= IDLE_KIB),
            ]
        )
    resume = results.get("resume")
    if resume:
        ms = resume["median_ms"]
        replayed = resume["runs"][0]["replayed"] if resume["runs"] else 0
        out.append(
            [
                f"resume of a {resume['gap']:,}-event gap, ms ({resume.get('client')} client, "
                f"median of {len(resume['runs'])}; {replayed:,} replayed)",
                _fmt(ms),
                "n/a",
                "",
                f"≤ {RESUME_MS:g} ms",
                _met(ms <= RESUME_MS),
            ]
        )
    return out


def markdown(results: dict[str, Any], header: str) -> str:
    head = ["figure", "hub", "bare websockets", "hub/baseline", "goal", "met"]
    lines = [header, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows(results)]
    floor = (results.get("connect") or {}).get("uvicorn-floor")
    if floor:
        lines += [
            "",
            f"uvicorn alone (bench/uvicorn_floor.py: accept, one frame, nothing else): "
            f"{floor['connections']:,} admitted in {floor['connect_seconds']:.2f} s, "
            f"{floor['connects_per_s']:,.0f} connects/s, "
            f"{floor['server_ms_per_connect']:.2f} ms CPU per connect, "
            f"{floor['kb_per_connection']:.1f} KiB per idle connection.",
        ]
    return "\n".join(lines)


async def main(args: argparse.Namespace) -> int:
    commit = git_revision()
    pin(CLIENT_CPU)
    raise_nofile(65536)
    parts = [p for p in args.only.split(",") if p] if args.only else list(PARTS)
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise SystemExit(f"unknown parts {sorted(unknown)}; choose from {PARTS}")
    started = time.monotonic()
    results: dict[str, Any] = {}
    if "fanout" in parts:
        results["fanout"] = await run_fanout(args)
    if "connect" in parts:
        # The fan-out parts leave this process a heap of dead clients: collected and
        # frozen here, so no collection runs among the 5,000 connects (the hub's CPU per
        # connect read 1.08 ms after them against 0.7 ms in a run of its own).
        gc.collect()
        gc.freeze()
        print(f"\n== {args.connections:,} connects, then idle", flush=True)
        print(header_lines(idle.HEADERS, 6), flush=True)
        results["connect"] = await run_connect(args)
    if "resume" in parts:
        print(f"\n== hub: resume of a {args.gap:,}-event gap", flush=True)
        results["resume"] = await run_resume(args)
    minutes = (time.monotonic() - started) / 60
    header = (
        f"Sitting of {time.strftime('%Y-%m-%d %H:%M')} UTC, commit {commit}, "
        f"{minutes:.1f} min, load average at the end {load_average()[0]:.2f}; "
        f"`python bench/sitting.py {' '.join(sys.argv[1:])}`".rstrip()
    )
    text = markdown(results, header)
    print("\n" + text)
    path = write_results(
        "sitting",
        {"commit": commit, "argv": sys.argv[1:], "minutes": minutes, "results": results},
    )
    path.with_suffix(".md").write_text(text + "\n")
    print(f"\nresults: {path} and {path.with_suffix('.md').relative_to(RESULTS.parent)}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", help=f"comma-separated parts to run: {','.join(PARTS)}")
    p.add_argument("--fast", action="store_true", help="a coarser, shorter ladder (~7-9 min)")
    p.add_argument("--fixed-rate", type=int, default=16_000, help="deliveries/s for CPU/frame")
    p.add_argument("--start", type=int, default=24_000, help="the ladder's first rate above it")
    p.add_argument("--growth", type=float, default=1.3)
    p.add_argument("--duration", type=float, default=4.0, help="seconds of publishing per step")
    p.add_argument("--drain", type=float, default=2.0)
    p.add_argument("--retries", type=int, default=1, help="re-runs of a failed step (noise)")
    p.add_argument("--refine-parts", type=int, default=3)
    p.add_argument("--quiet-timeout", type=float, default=30.0)
    p.add_argument("--connections", type=int, default=5000)
    p.add_argument("--concurrency", type=int, default=50, help="sessions connecting at a time")
    p.add_argument("--settle", type=float, default=5.0)
    p.add_argument(
        "--floor",
        action="store_true",
        help="connect part: also uvicorn alone (bench/uvicorn_floor.py), the hub's floor",
    )
    p.add_argument("--gap", type=int, default=1000, help="events to resume")
    p.add_argument("--resume-runs", type=int, default=5)
    p.add_argument(
        "--resume-client",
        choices=["lean", "websockets"],
        default="lean",
        help="lean: frames counted (the hub's time); websockets: the library client "
        "decoding each frame (what a Python client waits)",
    )
    p.add_argument("--hub-pythonpath", help="PYTHONPATH for the hub (a scratch copy)")
    p.add_argument("--env", action="append", default=[], help="KEY=VALUE for the hub")
    p.add_argument("--baseline-uvloop", action="store_true", help="baseline on uvloop")
    args = p.parse_args(argv)
    if args.fast:
        args.growth, args.duration, args.drain = 1.5, 3.0, 1.5
        # A failed step is still re-run once: on a shared machine one disturbed step
        # would otherwise end a ladder (the baseline's, in a sitting of 2026-11-30).
        args.refine_parts, args.resume_runs = 2, 3
    return args


if __name__ == "__main__":
    use_uvloop()
    raise SystemExit(asyncio.run(main(parse_args())))
