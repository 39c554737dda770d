"""The doors before the token under a flood: the hub's memory and sockets while clients
send oversized and slow request heads (docs/protocol.md section 4, v1.2; audit N2).

Server on CPU 0, this generator on CPU 1, on 127.0.0.1. After a warm-up (a few plain
requests), the hub's VmRSS is read; then, at once and for at most ``--duration`` seconds:

- ``--flooders`` connections each send one request head of ``--flood-mib`` MiB (a request
  line, then one header that never ends), as fast as the hub takes it;
- ``--slowloris`` connections each send a head a byte every ``--drip`` seconds (one in
  four a WebSocket upgrade), never finishing it.

The hub's VmRSS is sampled every 0.25 s (the peak) and read again ``--settle`` seconds
after every client socket is closed (after). Each connection the hub ended (a close or a
reset) is counted, with what the flooders had sent when it did. A hub that keeps
taking a flood is not let grow past ``--rss-cap-mib`` over its start: the flood stops
there (``capped``; the slow heads go on), so that the old code's run stays bounded on a
shared machine.

    python bench/doors.py                                  # this checkout
    python bench/doors.py --hub-pythonpath /tmp/old        # another copy of the code

Prints a table and writes bench/results/doors-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    CLIENT_CPU,
    git_revision,
    hub_server,
    pin,
    raise_nofile,
    rss_kb,
    table,
    use_uvloop,
    write_results,
)

MIB = 1024 * 1024
CHUNK = 64 * 1024
HEAD_START = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Flood: "
SLOW_HEAD = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 4096
SLOW_UPGRADE = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    b"X-Slow: " + b"a" * 4096
)


@dataclass
class Result:
    code: str
    header_timeout: str
    rss_before_mib: float
    rss_peak_mib: float
    rss_after_mib: float
    flooders: int
    flooders_cut: int  # ended by the hub before they had sent their head
    flood_sent_max_mib: float  # the most one flooder had sent when it ended
    flood_sent_total_mib: float
    slowloris: int
    slowloris_closed: int  # ended by the hub within the run
    slowloris_open_at_end: int
    hub_fds_peak: int
    capped: bool
    seconds: float
    closed_after_s: list[float] = field(default_factory=list)  # slowloris, median and max


@dataclass
class Tally:
    flood_sent: list[int] = field(default_factory=list)
    flood_cut: int = 0
    slow_closed_at: list[float] = field(default_factory=list)


async def flood(port: int, total: int, stop: asyncio.Event, tally: Tally) -> None:
    """One request head of ``total`` bytes, sent as fast as the hub reads it."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    payload = b"a" * CHUNK
    sent = 0
    cut = False
    try:
        writer.write(HEAD_START)
        while sent < total and not stop.is_set():
            writer.write(payload)
            await writer.drain()
            sent += CHUNK
            if reader.at_eof():
                cut = True
                break
    except (ConnectionError, OSError):
        cut = True
    finally:
        writer.transport.abort()
    tally.flood_sent.append(sent)
    tally.flood_cut += cut


async def slowloris(port: int, head: bytes, drip: float, stop: asyncio.Event, tally: Tally) -> None:
    """A head a byte every ``drip`` seconds, until the hub ends the connection or the run
    ends."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    ended = asyncio.ensure_future(reader.read())  # b"" (or what the hub said) at its close
    stopping = asyncio.ensure_future(stop.wait())
    try:
        for i in range(len(head)):
            with contextlib.suppress(ConnectionError, OSError):
                writer.write(head[i : i + 1])
            await asyncio.wait([ended, stopping], timeout=drip, return_when="FIRST_COMPLETED")
            if ended.done():
                tally.slow_closed_at.append(time.monotonic() - started)
                return
            if stopping.done():
                return
    finally:
        stopping.cancel()
        ended.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError, OSError):
            await ended
        writer.transport.abort()


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def warm_up(port: int) -> None:
    for _ in range(5):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        await reader.read()
        writer.close()


async def run(args: argparse.Namespace) -> Result:
    env = {"COMPANION_HEADER_TIMEOUT": args.header_timeout} if args.header_timeout else {}
    server = hub_server(pythonpath=args.hub_pythonpath, env=env).start()
    try:
        pid, port = server.pid, server.port
        await warm_up(port)
        await asyncio.sleep(1.0)
        before = rss_kb(pid)
        peak = before
        stop = asyncio.Event()  # the end of the run
        stop_flood = asyncio.Event()  # the cap, or the end of the run
        tally = Tally()
        capped = False
        began = time.monotonic()
        slow = [
            asyncio.ensure_future(
                slowloris(port, SLOW_UPGRADE if i % 4 == 3 else SLOW_HEAD, args.drip, stop, tally)
            )
            for i in range(args.slowloris)
        ]
        floods = [
            asyncio.ensure_future(flood(port, args.flood_mib * MIB, stop_flood, tally))
            for _ in range(args.flooders)
        ]
        everything = [*slow, *floods]
        deadline = began + args.duration
        fds_peak = 0
        while time.monotonic() < deadline and not all(t.done() for t in everything):
            await asyncio.sleep(0.25)
            now = rss_kb(pid)
            peak = max(peak, now)
            fds_peak = max(fds_peak, fds(pid))
            if (now - before) / 1024 > args.rss_cap_mib and not capped:
                capped = True
                stop_flood.set()
        seconds = time.monotonic() - began
        stop_flood.set()
        stop.set()
        await asyncio.gather(*everything, return_exceptions=True)
        await asyncio.sleep(args.settle)
        after = rss_kb(pid)
        closed = sorted(tally.slow_closed_at)
        return Result(
            code=args.hub_pythonpath or "this checkout",
            header_timeout=args.header_timeout or "default",
            rss_before_mib=round(before / 1024, 1),
            rss_peak_mib=round(peak / 1024, 1),
            rss_after_mib=round(after / 1024, 1),
            flooders=args.flooders,
            flooders_cut=tally.flood_cut,
            flood_sent_max_mib=round(max(tally.flood_sent, default=0) / MIB, 2),
            flood_sent_total_mib=round(sum(tally.flood_sent) / MIB, 1),
            slowloris=args.slowloris,
            slowloris_closed=len(closed),
            slowloris_open_at_end=args.slowloris - len(closed),
            hub_fds_peak=fds_peak,
            capped=capped,
            seconds=round(seconds, 1),
            closed_after_s=[round(closed[len(closed) // 2], 1), round(closed[-1], 1)]
            if closed
            else [],
        )
    finally:
        server.stop()


HEADERS = ["RSS before", "peak", "after", "flooders cut", "max sent MiB", "total MiB",
           "slow closed", "slow open", "hub fds peak", "capped", "s"]  # fmt: skip


def row(r: Result) -> list[object]:
    return [r.rss_before_mib, r.rss_peak_mib, r.rss_after_mib, f"{r.flooders_cut}/{r.flooders}",
            r.flood_sent_max_mib, r.flood_sent_total_mib, f"{r.slowloris_closed}/{r.slowloris}",
            r.slowloris_open_at_end, r.hub_fds_peak, r.capped, r.seconds]  # fmt: skip


async def main(args: argparse.Namespace) -> int:
    commit = git_revision()
    pin(CLIENT_CPU)
    raise_nofile(args.slowloris + args.flooders + 1000)
    result = await run(args)
    print(f"code: {result.code}  header timeout: {result.header_timeout}")
    print(table(HEADERS, [row(result)]))
    if result.closed_after_s:
        print(f"slowloris closed after (median, max): {result.closed_after_s} s")
    path = write_results("doors", {"commit": commit, "argv": sys.argv[1:], **asdict(result)})
    print(f"\nresults: {path}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--flooders", type=int, default=50)
    p.add_argument("--flood-mib", type=int, default=200, help="each flooder's head, in MiB")
    p.add_argument("--slowloris", type=int, default=400)
    p.add_argument("--drip", type=float, default=3.0, help="seconds between a slow head's bytes")
    p.add_argument("--duration", type=float, default=25.0, help="the flood's longest run, s")
    p.add_argument("--settle", type=float, default=3.0, help="seconds before the last RSS")
    p.add_argument("--rss-cap-mib", type=float, default=1024.0, help="stop the flood past it")
    p.add_argument("--header-timeout", help="COMPANION_HEADER_TIMEOUT for the hub")
    p.add_argument("--hub-pythonpath", help="PYTHONPATH for the hub (a scratch copy)")
    return p.parse_args(argv)


if __name__ == "__main__":
    use_uvloop()
    raise SystemExit(asyncio.run(main(parse_args())))
