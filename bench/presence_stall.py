"""Fault scenario S6 of the reliability review (issue 23): two hub processes on one
PostgreSQL database and a Redis of their own, with the default presence TTL (15 s);
5 sessions of 3 clients (two on hub 0, one on hub 1) publishing; hub 0 is stopped
(SIGSTOP) for 20 s, then continued, and the run waits 20 s more (past the TTL).

Held when, in every session, no connection that the history announces ``client_left``
is still open (each was closed, 1012, by its own process when it woke) and
``get_presence`` lists exactly the open connections. Prints one line per session and
HELD or BROKE; nothing is asserted (the test of the rule is
tests/integration/test_presence_stall.py, with a 1 s TTL).

    .venv/bin/python bench/presence_stall.py            # about 1 minute
    .venv/bin/python bench/presence_stall.py --stall 30
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
import tempfile
import time
from pathlib import Path

import httpx
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.cluster import Cluster
from tests.support.hub import token
from tests.support.ws import WS, connect


async def run(stall: float, after: float, sessions: int) -> bool:
    directory = Path(tempfile.mkdtemp(prefix="presence-stall-"))
    cluster = await asyncio.to_thread(Cluster(directory, size=2).start)
    try:
        h0, h1 = cluster.hubs
        clients: list[tuple[str, WS]] = []
        for _ in range(sessions):
            first = await connect(h0.ws_url, token("alice"))
            sid = first.welcome["session_id"]
            clients.append((sid, first))
            clients.append((sid, await connect(h0.ws_url, token("alice"), session_id=sid)))
            clients.append((sid, await connect(h1.ws_url, token("alice"), session_id=sid)))
        closed: dict[str, int | None] = {}

        async def read(ws: WS) -> None:
            try:
                async for _ in ws.conn:
                    pass
            except websockets.ConnectionClosed:
                pass
            closed[ws.welcome["connection_id"]] = ws.conn.close_code

        readers = [asyncio.create_task(read(ws)) for _, ws in clients]
        stop = asyncio.Event()

        async def publish() -> None:
            n = 0
            while not stop.is_set():
                for _, ws in clients:
                    if ws.welcome["connection_id"] not in closed:
                        with contextlib.suppress(websockets.ConnectionClosed):
                            await ws.send({"type": "contextual_update", "text": "x", "data": n})
                n += 1
                await asyncio.sleep(0.3)

        publisher = asyncio.create_task(publish())
        await asyncio.sleep(2)
        started = time.monotonic()
        h0.signal(signal.SIGSTOP)
        await asyncio.sleep(stall)
        h0.signal(signal.SIGCONT)
        print(f"hub 0 stopped for {time.monotonic() - started:.1f} s; waiting {after:.0f} s")
        await asyncio.sleep(after)
        stop.set()
        await publisher
        held = True
        auth = {"Authorization": f"Bearer {token('alice')}"}
        async with httpx.AsyncClient(base_url=h1.base_url, timeout=10) as http:
            for sid in sorted({sid for sid, _ in clients}):
                reply = await http.get(
                    f"/sessions/{sid}/history?after_seq=0&limit=1000", headers=auth
                )
                events = reply.json()["events"]
                left = {e["connection_id"] for e in events if e["type"] == "client_left"}
                ids = {ws.welcome["connection_id"] for s, ws in clients if s == sid}
                still_open = ids - set(closed)
                probe = await connect(h1.ws_url, token("alice"), session_id=sid)
                presence = await probe.request({"type": "get_presence"}, timeout=10)
                listed = {m["connection_id"] for m in presence["clients"]}
                listed.discard(probe.welcome["connection_id"])
                await probe.close()
                lying = left & still_open
                codes = sorted({closed[c] for c in left if c in closed}, key=str)
                print(
                    f"{sid}: announced gone {len(left)}, open {len(still_open)}, "
                    f"announced gone but open {len(lying)}, close codes {codes}, "
                    f"presence == open: {listed == still_open}"
                )
                held = held and not lying and listed == still_open
        for task in readers:
            task.cancel()
        print("HELD" if held else "BROKE")
        return held
    finally:
        await asyncio.to_thread(cluster.close)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stall", type=float, default=20.0, help="seconds hub 0 is stopped")
    parser.add_argument("--after", type=float, default=20.0, help="seconds waited after it")
    parser.add_argument("--sessions", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(run(args.stall, args.after, args.sessions))


if __name__ == "__main__":
    main()
