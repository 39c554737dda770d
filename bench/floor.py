"""Voice-floor benchmark (docs/protocol.md section 17): a control's trip through the hub.

The hub's own share of an ``agent_control``'s trip: from its arrival at the hub (the
decoded frame handed to the app by the hub's WebSocket protocol) to the write of the
``agent_control`` broadcast on the holder's socket. Section 17's bound: p99 under 20 ms
with 100 sessions active on one process.

The hub runs in a subprocess pinned to CPU 0 (this file with ``--serve``: the hub's own
app and server settings, under a subclass of its ``SocketProtocol`` that timestamps the
two points with ``perf_counter_ns`` and writes them out when the hub stops); this load
generator on CPU 1. 100 sessions, each with a holder (it took the floor) and a sender;
every session is active: its sender sends ``contextual_update``s (``--events`` per
session per second, broadcast to both sockets) and ``agent_control`` ``interrupt``s
(``--controls`` per session per second), spread evenly. The end-to-end time (the
sender's send to the holder's receipt, on this machine's loopback) is printed beside it.

    python bench/floor.py                         # 100 sessions, 1 control/s each, 15 s
    python bench/floor.py --sessions 100 --controls 2 --events 5 --duration 20

Prints a table and writes bench/results/floor-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    CLIENT_CPU,
    SECRET,
    Server,
    admit,
    create_session,
    free_port,
    hub_tokens,
    load_average,
    percentile,
    pin,
    table,
    write_results,
    ws_connect,
)

_RID = re.compile(rb'"requestId": ?"([^"]+)"')

# ---------------------------------------------------------------- the hub, traced


def serve(port: int, trace: Path) -> None:
    """The hub as ``companion-ws serve`` runs it, timing each control's trip."""
    import uvicorn

    from companion_ws.app import create_app
    from companion_ws.endpoints.http_protocol import http_protocol
    from companion_ws.endpoints.socket_protocol import SocketProtocol
    from companion_ws.settings import Settings

    arrivals: dict[bytes, int] = {}
    writes: dict[bytes, int] = {}

    class Traced(SocketProtocol):
        holder = False

        def _to_app(self, message: dict[str, Any]) -> None:
            text = message.get("text")
            if text is not None:
                if '"agent_control"' in text:
                    found = _RID.search(text.encode())
                    if found:
                        arrivals[found.group(1)] = time.perf_counter_ns()
                elif '"take_voice"' in text:
                    self.holder = True
            super()._to_app(message)

        def _written(self, frame: bytes) -> None:
            if self.holder and b'"agent_control"' in frame:
                found = _RID.search(frame)
                if found:
                    writes.setdefault(found.group(1), time.perf_counter_ns())

        def write(self, frame: bytes) -> bool:
            written = super().write(frame)
            if written:
                self._written(frame)
            return written

        async def send(self, message: dict[str, Any]) -> None:
            await super().send(message)
            text = message.get("text")
            if text is not None:
                self._written(text.encode())

    settings = Settings.from_env(os.environ)
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        ws=Traced,
        ws_max_size=settings.max_frame_bytes,
        ws_per_message_deflate=False,
        http=http_protocol(settings.max_header_bytes, settings.header_timeout),
        loop="uvloop",
        log_level="warning",
        access_log=False,
    )
    # uvicorn raises the signal it stopped on again once it is done: let that be a no-op
    # here, so the trace is written (as `companion-ws serve` does).
    signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        uvicorn.Server(config).run()
    finally:
        trips = [(writes[r] - t) / 1e6 for r, t in arrivals.items() if r in writes]
        trace.write_text(
            json.dumps({"trips_ms": trips, "arrived": len(arrivals), "written": len(writes)})
        )


# ---------------------------------------------------------------- the load


async def load(args: argparse.Namespace, server: Server) -> dict[str, Any]:
    tokens = hub_tokens()
    sent: dict[str, int] = {}
    received: dict[str, int] = {}

    def holder_frame(payload: bytes, now: int) -> None:
        if b'"agent_control"' in payload:
            found = _RID.search(payload)
            if found:
                received.setdefault(found.group(1).decode(), now)

    def ignore(payload: bytes, now: int) -> None:
        pass

    sessions = []
    for i in range(args.sessions):
        tok = tokens.mint(f"floor-{i}-{uuid.uuid4().hex[:6]}", ttl=3600)
        holder, sid = await create_session(ws_connect, server.ws_url(f"/ws?token={tok}"), ignore)
        holder.on_text = holder_frame
        sender = await admit(
            server.ws_url(f"/ws?token={tok}&session_id={sid}"), ignore, welcome=True
        )
        holder.send_text(b'{"type":"take_voice"}')
        sessions.append((holder, sender))
    await asyncio.sleep(1.0)

    events_every = 1.0 / args.events if args.events > 0 else None
    controls_every = 1.0 / args.controls

    async def drive(index: int, sender: Any) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time() + index / args.sessions * controls_every  # spread evenly
        end = start + args.duration
        next_control = start
        next_event = start + controls_every / 2
        n = 0
        while True:
            now = loop.time()
            if now >= end:
                return
            if events_every is not None and next_event <= next_control:
                await asyncio.sleep(max(0.0, next_event - now))
                sender.send_text(b'{"type":"contextual_update","text":"busy","data":{"n":1}}')
                next_event += events_every
                continue
            await asyncio.sleep(max(0.0, next_control - now))
            n += 1
            rid = f"c{index}-{n}"
            sent[rid] = time.time_ns()
            frame = {"type": "agent_control", "action": "interrupt", "requestId": rid}
            sender.send_text(json.dumps(frame).encode())
            next_control += controls_every

    await asyncio.gather(*(drive(i, s) for i, (_, s) in enumerate(sessions)))
    await asyncio.sleep(1.0)
    for holder, sender in sessions:
        holder.close()
        sender.close()
    end_to_end = sorted((received[r] - t) / 1e6 for r, t in sent.items() if r in received)
    return {"sent": len(sent), "received": len(received), "end_to_end_ms": end_to_end}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--trace", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--sessions", type=int, default=100)
    parser.add_argument("--controls", type=float, default=1.0, help="per session per second")
    parser.add_argument("--events", type=float, default=2.0, help="other events per session/s")
    parser.add_argument("--duration", type=float, default=15.0)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.trace)
        return 0

    pin(CLIENT_CPU)
    port = free_port()
    trace = Path(f"/tmp/bench-floor-{uuid.uuid4().hex[:8]}.json")
    db = Path(f"/tmp/bench-{uuid.uuid4().hex[:10]}.db")
    env = {
        **os.environ,
        "COMPANION_JWT_SECRET": SECRET,
        "COMPANION_DATABASE_URL": f"sqlite+aiosqlite:///{db}",
        "COMPANION_CONNECT_RATE": "1000000",
        "COMPANION_CONNECT_BURST": "1000000",
    }
    argv = [sys.executable, __file__, "--serve", str(port), "--trace", str(trace)]
    server = Server("hub-floor", argv, env, port, db_path=db).start()
    try:
        client = asyncio.run(load(args, server))
    finally:
        if server.proc is not None and server.proc.poll() is None:
            server.proc.send_signal(signal.SIGTERM)  # the hub writes its trace as it stops
            server.proc.wait(30)
        server.stop()
    hub = json.loads(trace.read_text())
    print(f"the hub saw {hub['arrived']} controls and wrote {hub['written']} to their holders")
    trace.unlink(missing_ok=True)
    trips = sorted(hub["trips_ms"])
    e2e = client["end_to_end_ms"]
    rows = [
        ["hub: arrival -> holder write", len(trips), *_quantiles(trips)],
        ["end to end (loopback, client)", len(e2e), *_quantiles(e2e)],
    ]
    print(
        f"{args.sessions} sessions, {args.controls:g} control/s and {args.events:g} other "
        f"events/s each, {args.duration:g} s; controls sent {client['sent']}, reached the "
        f"holder {client['received']}; load average {load_average()}"
    )
    print(table(["trip", "n", "p50 ms", "p90 ms", "p99 ms", "max ms"], rows))
    path = write_results(
        "floor",
        {
            "args": vars(args) | {"trace": None},
            "hub_trip_ms": _summary(trips),
            "end_to_end_ms": _summary(e2e),
            "sent": client["sent"],
            "received": client["received"],
        },
    )
    print(f"wrote {path}")
    return 0


def _quantiles(values: list[float]) -> list[str]:
    if not values:
        return ["-"] * 4
    return [f"{percentile(values, q):.2f}" for q in (50, 90, 99)] + [f"{values[-1]:.2f}"]


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {f"p{q}": percentile(values, q) for q in (50, 90, 99)} | {
        "max": values[-1],
        "n": len(values),
    }


if __name__ == "__main__":
    sys.exit(main())
