"""``companion-ws demo``: the hub, a scripted voice agent and the page, in one command.

It starts the hub with its embedded defaults (SQLite in a temporary folder, the
in-memory broker, a random signing key), creates a session, prints the page's link,
waits for a screen to open it, then plays a short shipping conversation: the real
bridge (``companion-ws agent``) and the real ElevenLabs SDK against a local stand-in of
the platform (:mod:`companion_ws.demo.standin`) that plays the agent from a script. The
hub keeps running after the conversation, until Ctrl-C.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import secrets
import sys
import tempfile
import urllib.request
from pathlib import Path
from typing import Any

__all__ = ["register"]

USER = "demo-user"


def register(subparsers: Any) -> None:
    demo = subparsers.add_parser(
        "demo", help="the hub with a scripted voice agent: see the product in one command"
    )
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8000)
    demo.add_argument(
        "--pick-timeout",
        type=float,
        default=45.0,
        help="seconds the agent waits for a quote to be picked on a screen",
    )
    demo.add_argument("--pace", type=float, default=1.5, help="seconds between the script's lines")
    demo.add_argument(
        "--no-wait", action="store_true", help="start talking without waiting for a screen"
    )
    from companion_ws.reach import add_tls_arguments

    add_tls_arguments(demo)
    demo.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    import uvloop

    from companion_ws.startup import StartupError, check_port

    try:
        check_port(args.host, args.port)
    except StartupError as exc:
        print(f"companion-ws: {exc}", file=sys.stderr)
        return 2
    with (
        tempfile.TemporaryDirectory(prefix="companion-demo-") as folder,
        contextlib.suppress(KeyboardInterrupt),
    ):
        uvloop.run(_demo(args, Path(folder)))
    return 0


async def _demo(args: argparse.Namespace, folder: Path) -> None:
    """The stand-in first: the page's conversations are signed by it too (a screen that
    presses "Talk here" takes the voice from the demo's agent, docs/protocol.md 17)."""
    from companion_ws.demo.script import ShippingScript
    from companion_ws.demo.standin import StandIn

    script = ShippingScript(pace=args.pace, pick_timeout=args.pick_timeout)
    async with StandIn(script) as platform:
        await _serve(args, folder, platform)


async def _serve(args: argparse.Namespace, folder: Path, platform: Any) -> None:
    import uvicorn

    from companion_ws.app import create_app, token_service
    from companion_ws.endpoints.http_protocol import http_protocol
    from companion_ws.endpoints.socket_protocol import SocketProtocol
    from companion_ws.integrations.elevenlabs import AgentBridge, BridgeConfig
    from companion_ws.integrations.voice_holder import run_holding
    from companion_ws.settings import Settings
    from companion_ws.tools.registry import ToolRegistry

    settings = Settings.from_env(
        {k: v for k, v in os.environ.items() if k == "COMPANION_PUBLIC_URL"},
        database_url=f"sqlite+aiosqlite:///{folder / 'demo.db'}",
        jwt_secret=secrets.token_urlsafe(32),
        jwt_algorithm="HS256",
        elevenlabs_agent_id=platform.agent_id,
        elevenlabs_api_key="demo-stand-in",
        elevenlabs_base_url=platform.base_url,
    )
    from companion_ws.reach import ALL_INTERFACES, lan_links, printed_base, tls_files

    tls = tls_files(args, f"sqlite+aiosqlite:///{folder / 'demo.db'}")
    if args.dev_tls:
        assert tls is not None
        # The demo's own agent and calls trust that certificate (and nothing else needs
        # one here: the stand-in is plain HTTP on the loopback).
        os.environ["SSL_CERT_FILE"] = str(tls[0])
    app = create_app(settings)
    public = printed_base(args.host, args.port, tls=tls is not None, public_url=settings.public_url)
    if args.host in ALL_INTERFACES:
        lan_links(app, public)
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host=args.host,
            port=args.port,
            http=http_protocol(settings.max_header_bytes, settings.header_timeout),
            ws=SocketProtocol,
            log_level="warning",
            access_log=False,
            ssl_certfile=str(tls[0]) if tls else None,
            ssl_keyfile=str(tls[1]) if tls else None,
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        if serving.done():
            return  # uvicorn said why
        await asyncio.sleep(0.05)
    host = "127.0.0.1" if args.host in ALL_INTERFACES else args.host
    base = f"{'https' if tls else 'http'}://{host}:{args.port}"  # the demo's own calls
    owner = token_service(settings).mint(USER, ttl=12 * 3600)
    session = await _http(base, "POST", "/sessions", owner)
    sid = session["session_id"]
    print(
        "\n".join(
            [
                "companion-ws demo: a scripted voice agent (a stand-in, not ElevenLabs) and",
                "the hub, with a throw-away database and signing key.",
                f"  open the page   {public}/?session_id={sid}&token={owner}",
                "  then scan its QR code with a phone on the same network to join it too",
                "",
            ]
        ),
        flush=True,
    )
    if not args.no_wait:
        print("waiting for the page to open...", flush=True)
        await _screen_opened(base, sid, owner)
    bridge = AgentBridge(
        BridgeConfig(
            agent_id=platform.agent_id,
            session_id=sid,
            hub_url=base.replace("http", "ws", 1),
            token=owner,
            base_url=platform.base_url,
            keepalive=0,
        ),
        ToolRegistry.from_modules(settings.tools),
    )
    print("the agent is talking: watch the page", flush=True)
    talking = asyncio.create_task(run_holding(bridge))
    await asyncio.wait({talking, serving}, return_when=asyncio.FIRST_COMPLETED)
    moved = talking.done() and not talking.exception() and talking.result() == "voice_moved"
    bridge.stop()
    with contextlib.suppress(Exception):
        await talking
    if moved:
        print("the voice moved to a screen: the conversation goes on there", flush=True)
    print("the demo conversation is over; the hub keeps running (Ctrl-C to stop)", flush=True)
    await serving


async def _screen_opened(base: str, session_id: str, token: str) -> None:
    """Return once a screen is connected to the session (polled over HTTP)."""
    while True:
        if (await _http(base, "GET", f"/sessions/{session_id}", token))["connections"]:
            return
        await asyncio.sleep(0.5)


async def _http(base: str, method: str, path: str, token: str) -> dict[str, Any]:
    def call() -> dict[str, Any]:
        request = urllib.request.Request(
            base + path, method=method, headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            answer: dict[str, Any] = json.load(response)
            return answer

    return await asyncio.to_thread(call)
