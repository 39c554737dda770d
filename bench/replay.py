"""Replay throughput: how fast a resuming client gets a 1,000-event gap back.

Starts a hub (SQLite, in-process broker) pinned to CPU 0, publishes ``--events``
contextual updates into one session, then, ``--runs`` times, connects a client with
``last_seq=0`` (or ``--gap`` events back) and the session's epoch and times from
sending the handshake to receiving the last replayed event and the ``resumed`` frame
that follows. Prints each run and the median in events per second, and writes
bench/results/replay-*.json.

    python bench/replay.py                      # 1000 events, 5 runs
    python bench/replay.py --events 1000 --runs 5 --payload 200
    python bench/replay.py --events 1200 --gap 1000    # the issue's "1,000-event gap"

The client is the ``websockets`` asyncio client (as ``companion_ws.client`` uses),
on CPU 1, decoding every frame: what a real resuming client pays.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    CLIENT_CPU,
    hub_server,
    hub_tokens,
    load_average,
    pin,
    table,
    use_uvloop,
    write_results,
    ws_connect,
)


async def publish(url: str, token: str, events: int, payload: int) -> tuple[str, str, int]:
    """A session with ``events`` contextual updates; (session id, epoch, last seq)."""
    async with websockets.connect(f"{url}/ws?{urlencode({'token': token})}") as ws:
        welcome = json.loads(await ws.recv())
        sid, epoch = welcome["session_id"], welcome["epoch"]
        data = {"blob": "x" * payload}
        last = 0
        window = 100  # requests in flight
        sent = 0
        acked = 0
        while acked < events:
            while sent < events and sent - acked < window:
                frame = {"type": "contextual_update", "text": f"e{sent}", "data": data}
                await ws.send(json.dumps({**frame, "requestId": f"r{sent}"}))
                sent += 1
            reply = json.loads(await ws.recv())
            if reply.get("type") == "error":
                raise RuntimeError(f"the hub refused a publish: {reply}")
            if reply.get("type") == "contextual_update" and "requestId" in reply:
                acked += 1
                last = reply["seq"]
    return sid, epoch, last


async def replay_once(
    url: str, token: str, sid: str, epoch: str, last_seq: int = 0
) -> tuple[float, int]:
    """Seconds from connecting (with ``last_seq``) to the `resumed` frame that follows
    the last replayed event, and the events replayed."""
    query = urlencode({"token": token, "session_id": sid, "last_seq": last_seq, "epoch": epoch})
    started = time.perf_counter()
    async with websockets.connect(f"{url}/ws?{query}", max_size=2**24) as ws:
        replayed = 0
        while True:
            frame = json.loads(await ws.recv())
            kind = frame["type"]
            if kind == "resumed":
                elapsed = time.perf_counter() - started
                if frame["replayed"] != replayed:
                    raise RuntimeError(f"counted {replayed}, the hub says {frame['replayed']}")
                return elapsed, replayed
            if kind == "resync_required":
                raise RuntimeError("the gap is outside the history window: raise --history")
            if kind != "session_joined":
                replayed += 1


async def replay_once_lean(
    url: str, token: str, sid: str, epoch: str, last_seq: int = 0
) -> tuple[float, int]:
    """:func:`replay_once` on the lean client (common.ws_connect): frames are counted,
    not decoded, so the time is the hub's, not a Python client's JSON decoding."""
    query = urlencode({"token": token, "session_id": sid, "last_seq": last_seq, "epoch": epoch})
    loop = asyncio.get_running_loop()
    done: asyncio.Future[tuple[float, int]] = loop.create_future()
    frames = [0]

    def on_text(payload: bytes, now: int) -> None:
        if done.done():
            return
        if b'"type":"resumed"' in payload:
            done.set_result((time.perf_counter(), json.loads(payload)["replayed"]))
        elif b'"type":"resync_required"' in payload:
            done.set_exception(RuntimeError("the gap is outside the history window"))
        elif b'"type":"session_joined"' not in payload:
            frames[0] += 1

    started = time.perf_counter()
    client = await ws_connect(f"{url}/ws?{query}", on_text)
    try:
        ended, said = await asyncio.wait_for(done, 30)
    finally:
        client.close()
    if said != frames[0]:
        raise RuntimeError(f"counted {frames[0]}, the hub says {said}")
    return ended - started, frames[0]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    """Publish ``args.events`` events, then resume ``args.runs`` times from ``args.gap``
    events back (0: from the start)."""
    env = {
        "COMPANION_HISTORY_SIZE": str(args.history),
        # publishing the gap is set-up, not what is measured: lift the per-socket limit
        "COMPANION_RATE_LIMIT_PER_SECOND": "1000000",
        "COMPANION_RATE_LIMIT_BURST": "1000000",
    }
    server = hub_server(env=env).start()
    try:
        url = server.ws_url("").rstrip("/")
        token = hub_tokens().mint("bench", ttl=3600)
        sid, epoch, last = await publish(url, token, args.events, args.payload)
        await asyncio.sleep(0.5)  # let the event log settle
        runs = []
        for i in range(args.runs):
            # each earlier run added its join and its leave to the session
            since = max(0, last + 2 * i - args.gap) if args.gap else 0
            once = replay_once_lean if getattr(args, "client", "") == "lean" else replay_once
            seconds, replayed = await once(url, token, sid, epoch, since)
            # each run's own join (and the previous run's leave) are events too
            runs.append(
                {"seconds": seconds, "replayed": replayed, "per_second": replayed / seconds}
            )
            await asyncio.sleep(0.2)
    finally:
        server.stop()
    median = statistics.median(r["per_second"] for r in runs)
    median_ms = statistics.median(r["seconds"] for r in runs) * 1000
    print(
        table(
            ["run", "replayed", "ms", "events/s"],
            [
                [i + 1, r["replayed"], r["seconds"] * 1000, r["per_second"]]
                for i, r in enumerate(runs)
            ],
        )
    )
    gap = f"{args.gap}-event gap" if args.gap else f"{args.events} events"
    print(f"\nmedian: {median:,.0f} events/s replayed ({gap}, last seq {last})")
    print(f"median: {median_ms:.1f} ms per resume")
    return {
        "events": args.events,
        "gap": args.gap,
        "payload": args.payload,
        "client": getattr(args, "client", "websockets"),
        "runs": runs,
        "median": median,
        "median_ms": median_ms,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument(
        "--client",
        choices=["websockets", "lean"],
        default="websockets",
        help="the resuming client: the websockets library decoding every frame, or the "
        "lean one counting them (the hub's time)",
    )
    parser.add_argument(
        "--gap", type=int, default=0, help="resume this many events back (0: from the start)"
    )
    parser.add_argument("--payload", type=int, default=200, help="bytes of data per event")
    parser.add_argument("--history", type=int, default=2000, help="COMPANION_HISTORY_SIZE")
    args = parser.parse_args()
    pin(CLIENT_CPU)
    if args.client == "lean":
        use_uvloop()
    result = asyncio.run(run(args))
    path = write_results("replay", {**result, "loadavg": load_average()})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
