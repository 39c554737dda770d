"""The comparison baseline: a bare asyncio ``websockets`` server with rooms.

``ws://127.0.0.1:PORT/ws?session_id=S`` joins room S; every text message is handed,
as received, to ``websockets.asyncio.server.broadcast()`` for the whole room, the
sender included. No auth, no seq, no state, no history, no welcome frame: the floor
under what the hub can cost.

    python bench/baseline_websockets.py --port 8765 [--uvloop]
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, broadcast, serve


async def main(port: int) -> None:
    rooms: dict[str, set[ServerConnection]] = {}

    async def handler(ws: ServerConnection) -> None:
        assert ws.request is not None
        query = parse_qs(urlsplit(ws.request.path).query)
        sid = query.get("session_id", ["default"])[-1]
        room = rooms.setdefault(sid, set())
        room.add(ws)
        try:
            async for message in ws:
                broadcast(room, message)
        finally:
            room.discard(ws)
            if not room:
                rooms.pop(sid, None)

    # Like the hub: no per-message compression, 64 KiB frames at most.
    async with serve(
        handler, "127.0.0.1", port, compression=None, max_size=64 * 1024, backlog=4096
    ) as server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--uvloop", action="store_true", help="run on uvloop, as the hub does")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.uvloop:
        import uvloop

        uvloop.run(main(args.port))
    else:
        asyncio.run(main(args.port))
