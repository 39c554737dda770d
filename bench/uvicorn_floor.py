"""The floor under the hub's connect and idle figures: uvicorn as the hub runs it
(uvloop, httptools, the hub's own WebSocket protocol ``SocketProtocol``, no
compression, no proxy headers) with an ASGI
app that does nothing but accept, send one small text frame (a stand-in for the
welcome) and wait for the disconnect. No auth, no database, no presence.

``--server`` puts another server under the same behaviour, to compare floors:

- ``uvicorn-hub`` (the default, as the hub runs: ``uvicorn.Config(ws=SocketProtocol)``,
  companion_ws/endpoints/socket_protocol.py), ``uvicorn-sansio`` (uvicorn's
  ``websockets-sansio``, what the hub ran before), ``uvicorn-websockets`` (uvicorn's
  legacy ``ws="websockets"``), ``uvicorn-wsproto`` (``ws="wsproto"``): the ASGI app;
- ``granian``: the same ASGI app on granian's embedded server (one process, one Rust
  runtime thread, this process's uvloop), HTTP/1 only;
- ``websockets``: the websockets library's asyncio server, a handler that sends the
  frame and waits for the close (plain GET: 200 "ok" from ``process_request``);
- ``picows``: picows' ``ws_create_server``, a listener that sends the frame on
  connect (plain GET: 200 "ok" from the listener factory); ``picows-2k`` the same
  with a 2 KiB initial read buffer per socket (picows' default is 16 KiB, its least
  2 KiB; the buffer doubles when a frame does not fit); ``picows-uvloop`` with a
  2 KiB buffer on uvloop's own transports (picows uses aiofastnet's when that package
  is installed, and picows requires it);
- ``uvicorn-picows``: uvicorn on one port, plain HTTP to the ASGI app, the upgrade
  handed to picows' protocol through ``uvicorn.Config(ws=CLASS)`` (a prototype on
  picows' internal ``picows.picows.WSProtocol``: no ASGI app, no Task per socket;
  2 KiB buffer, uvloop's transports).

All on uvloop, no compression, the same garbage-collector settings (frozen after
start-up). Every server answers a plain HTTP GET with 200 "ok".

    python bench/uvicorn_floor.py --port 8765 [--server granian]
"""

from __future__ import annotations

import argparse
import gc
from typing import Any

WELCOME = '{"type":"session_joined","session_id":"floor"}'
SERVERS = (
    "uvicorn-hub",
    "uvicorn-sansio",
    "uvicorn-websockets",
    "uvicorn-wsproto",
    "granian",
    "websockets",
    "picows",
    "picows-2k",
    "picows-uvloop",
    "uvicorn-picows",
)
HOST = "127.0.0.1"
BACKLOG = 2048  # uvicorn's default, for every server
MAX_MESSAGE = 64 * 1024  # like the hub, where the server has the setting


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


def freeze_gc() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)


def run_uvicorn(port: int, ws: Any) -> None:
    import uvicorn

    config = uvicorn.Config(
        app,
        host=HOST,
        port=port,
        ws=ws,
        ws_per_message_deflate=False,
        http="httptools",
        loop="uvloop",
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        lifespan="off",
    )
    freeze_gc()
    uvicorn.Server(config).run()


def run_granian(port: int) -> None:
    """Granian's embedded server: the worker runs in this process on its running loop
    (the CLI would fork a worker process, a second process to measure)."""
    import logging

    import uvloop
    from granian.constants import HTTPModes, Interfaces
    from granian.log import LogLevels
    from granian.server.embed import Server

    server = Server(
        app,
        address=HOST,
        port=port,
        interface=Interfaces.ASGINL,  # no lifespan, like uvicorn's lifespan="off"
        runtime_threads=1,
        http=HTTPModes.http1,
        websockets=True,
        backlog=BACKLOG,
        # The concurrent requests a worker takes; a WebSocket holds one for its life,
        # and the default (backlog / workers) would stop admitting at 2,048 sockets.
        backpressure=65_536,
        log_level=LogLevels.warning,
        log_access=False,
    )
    logging.getLogger("_granian").setLevel(logging.ERROR)  # "embedded is experimental"
    freeze_gc()
    uvloop.run(server.serve())


def run_websockets(port: int) -> None:
    import uvloop
    from websockets.asyncio.server import ServerConnection, serve
    from websockets.http11 import Request, Response

    def process_request(connection: ServerConnection, request: Request) -> Response | None:
        if request.headers.get("Upgrade", "").lower() != "websocket":
            return connection.respond(200, "ok")
        return None

    async def handler(ws: ServerConnection) -> None:
        await ws.send(WELCOME)
        await ws.wait_closed()

    async def main() -> None:
        async with serve(
            handler,
            HOST,
            port,
            compression=None,
            max_size=MAX_MESSAGE,
            backlog=BACKLOG,
            process_request=process_request,
        ) as server:
            freeze_gc()
            await server.serve_forever()

    uvloop.run(main())


def picows_listener_factory() -> Any:
    """picows' router: a listener that sends the welcome for an upgrade, 200 "ok" for
    anything else."""
    from picows import (
        WSFrame,
        WSListener,
        WSMsgType,
        WSTransport,
        WSUpgradeRequest,
        WSUpgradeResponse,
        WSUpgradeResponseWithListener,
    )

    welcome = WELCOME.encode()

    class Floor(WSListener):
        def on_ws_connected(self, transport: WSTransport) -> None:
            transport.send(WSMsgType.TEXT, welcome)

        def on_ws_frame(self, transport: WSTransport, frame: WSFrame) -> None:
            if frame.msg_type == WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code(), frame.get_close_message())
                transport.disconnect()

    def factory(request: WSUpgradeRequest) -> Any:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return Floor()
        return WSUpgradeResponseWithListener(WSUpgradeResponse.create_ok_response(b"ok"), None)

    return factory


def run_picows(port: int, read_buffer: int = 16 * 1024, aiofastnet: bool | None = None) -> None:
    import uvloop
    from picows import ws_create_server

    async def main() -> None:
        server = await ws_create_server(
            picows_listener_factory(),
            HOST,
            port,
            max_frame_size=MAX_MESSAGE,
            # keepalive like uvicorn's and websockets' (a ping after 20 s of silence)
            enable_auto_ping=True,
            auto_ping_idle_timeout=20,
            auto_ping_reply_timeout=20,
            read_buffer_init_size=read_buffer,
            use_aiofastnet=aiofastnet,
            backlog=BACKLOG,
        )
        freeze_gc()
        await server.serve_forever()

    uvloop.run(main())


def run_uvicorn_picows(port: int) -> None:
    """uvicorn's httptools protocol parses the request line and headers; on an upgrade
    it builds ``ws_protocol_class(config=, server_state=, app_state=)``, calls its
    ``connection_made(transport)`` and ``data_received(the request, re-serialised)``,
    then ``transport.set_protocol(it)``. Here that class is picows' protocol, which
    answers the handshake itself and calls the listener: no scope, no queue, no Task.
    A prototype: WSProtocol is not picows' public API (its arguments are those
    ``ws_create_server`` passes), and the connection is not in uvicorn's
    ``server_state.connections``, so uvicorn's graceful shutdown does not close it."""
    import logging

    from picows import WSAutoPingStrategy
    from picows.picows import WSProtocol

    factory = picows_listener_factory()
    logger = logging.getLogger("picows.server")

    class PicowsUnderUvicorn(WSProtocol):
        def __init__(self, config: Any, server_state: Any, app_state: Any) -> None:
            super().__init__(
                None,  # host and port: a client's
                None,  # path: a client's
                False,  # server side
                factory,
                logger,
                True,  # disconnect on an exception in the listener
                5,  # handshake timeout
                True,  # keepalive, as in run_picows
                20,
                20,
                WSAutoPingStrategy.PING_WHEN_IDLE,
                True,  # answer pings
                MAX_MESSAGE,
                None,  # extra headers
                2048,  # read buffer
            )

        def data_received(self, data: bytes) -> None:
            """The upgrade request uvicorn hands over; picows reads through get_buffer."""
            view = memoryview(data)
            while view:
                buffer = self.get_buffer(len(view))
                n = min(len(buffer), len(view))
                buffer[:n] = view[:n]
                self.buffer_updated(n)
                view = view[n:]

    run_uvicorn(port, PicowsUnderUvicorn)


def run(server: str, port: int) -> None:
    if server == "uvicorn-hub":
        from companion_ws.endpoints.socket_protocol import SocketProtocol

        run_uvicorn(port, SocketProtocol)
    elif server in ("uvicorn-sansio", "uvicorn-websockets", "uvicorn-wsproto"):
        ws = {"sansio": "websockets-sansio", "websockets": "websockets", "wsproto": "wsproto"}
        run_uvicorn(port, ws[server.removeprefix("uvicorn-")])
    elif server == "granian":
        run_granian(port)
    elif server == "websockets":
        run_websockets(port)
    elif server == "picows":
        run_picows(port)
    elif server == "picows-2k":
        run_picows(port, read_buffer=2048)
    elif server == "picows-uvloop":
        run_picows(port, read_buffer=2048, aiofastnet=False)
    elif server == "uvicorn-picows":
        run_uvicorn_picows(port)
    else:
        raise SystemExit(f"unknown server {server!r}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--server", choices=SERVERS, default=SERVERS[0])
    args = parser.parse_args()
    run(args.server, args.port)
