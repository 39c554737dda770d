"""Bus inbound -> every screen of a session: how many messages per second the hub takes
from NATS JetStream (``companion.in``) and delivers to all of a session's sockets, and
the latency from the publish to the last screen's receipt (p50/p99).

    .venv/bin/python bench/bus_inbound.py [--screens 10] [--messages 3000] [--rate 0]
        [--keyed] [--nats nats://127.0.0.1:4222]

``--rate 0`` publishes as fast as JetStream acknowledges; ``--keyed`` gives every
message an idempotency key (the ledger's two extra commits). The hub runs on a fresh
SQLite file (durable before visible), pinned to one CPU, like the other benches.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import nats

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    CLIENT_CPU,
    hub_server,
    hub_tokens,
    percentile,
    pin,
    use_uvloop,
    write_results,
    ws_connect,
)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    prefix, stream = f"bench{tag}", f"BENCH{tag.upper()}"
    server = hub_server(
        env={
            "COMPANION_BUS_URL": args.nats,
            "COMPANION_BUS_PREFIX": prefix,
            "COMPANION_BUS_STREAM": stream,
        }
    ).start()
    nc = await nats.connect(args.nats)
    js = nc.jetstream()
    try:
        token = hub_tokens().mint("bench", ttl=3600)
        sent: dict[str, int] = {}
        received: dict[str, int] = {}
        last: dict[str, int] = {}
        done = asyncio.Event()

        def on_text(payload: bytes, now: int) -> None:
            frame = json.loads(payload)
            rid = frame.get("requestId")
            if rid is None or frame.get("type") != "contextual_update":
                return
            received[rid] = received.get(rid, 0) + 1
            if received[rid] == args.screens:
                last[rid] = now
                if len(last) == args.messages:
                    done.set()

        url = f"ws://127.0.0.1:{server.port}/ws?token={token}"
        first = await ws_connect(url, on_text)
        # the welcome went to on_text; read the session from the first frame we saw
        sid = await _session_of(server.port, token)
        screens = [first] + [
            await ws_connect(f"{url}&session_id={sid}", on_text) for _ in range(args.screens - 1)
        ]
        await asyncio.sleep(1.0)
        gap = 1.0 / args.rate if args.rate else 0.0
        started = time.perf_counter()
        for i in range(args.messages):
            rid = f"m{i}"
            message = {
                "session_id": sid,
                "type": "contextual_update",
                "text": "bench",
                "data": {"i": i},
                "correlation_id": rid,
            }
            if args.keyed:
                message["idempotency_key"] = rid
            sent[rid] = time.time_ns()
            await js.publish(f"{prefix}.in", json.dumps(message).encode())
            if gap:
                await asyncio.sleep(gap)
        await asyncio.wait_for(done.wait(), 300)
        elapsed = time.perf_counter() - started
        latencies = sorted((last[r] - sent[r]) / 1e6 for r in last)
        for screen in screens:
            screen.close()
        return {
            "screens": args.screens,
            "messages": args.messages,
            "keyed": args.keyed,
            "seconds": round(elapsed, 3),
            "messages_per_s": round(args.messages / elapsed, 1),
            "deliveries_per_s": round(args.messages * args.screens / elapsed, 1),
            "p50_ms": round(percentile(latencies, 0.50), 2),
            "p99_ms": round(percentile(latencies, 0.99), 2),
        }
    finally:
        try:
            await js.delete_stream(stream)
        finally:
            await nc.close()
            server.stop()


async def _session_of(port: int, token: str) -> str:
    import httpx

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        r = await http.get("/sessions", headers={"Authorization": f"Bearer {_admin()}"})
        sessions = r.json()["sessions"]
        return str(sessions[0]["session_id"])


def _admin() -> str:
    return str(hub_tokens().mint("bench-admin", ttl=3600, admin=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screens", type=int, default=10)
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=0.0, help="messages/s; 0: flat out")
    parser.add_argument("--keyed", action="store_true", help="an idempotency key each")
    parser.add_argument("--nats", default="nats://127.0.0.1:4222")
    args = parser.parse_args()
    pin(CLIENT_CPU)
    use_uvloop()
    result = asyncio.run(run(args))
    print(json.dumps(result, indent=2))
    write_results("bus_inbound", result)


if __name__ == "__main__":
    main()
