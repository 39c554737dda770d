"""The floor under the hub's connect and idle figures: uvicorn as the hub runs it
(uvloop, httptools, websockets-sansio, no compression, no proxy headers) with an ASGI
app that does nothing but accept, send one small text frame (a stand-in for the
welcome) and wait for the disconnect. No auth, no database, no presence.

    python bench/uvicorn_floor.py --port 8765
"""

from __future__ import annotations

import argparse
import gc
from typing import Any

import uvicorn

WELCOME = '{"type":"session_joined","session_id":"floor"}'


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "http":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    if scope["type"] != "websocket":
        return
    if (await receive())["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.send", "text": WELCOME})
    while (await receive())["type"] != "websocket.disconnect":
        pass


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=args.port,
        ws="websockets-sansio",
        ws_per_message_deflate=False,
        http="httptools",
        loop="uvloop",
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        lifespan="off",
    )
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    uvicorn.Server(config).run()
