"""companion-ws: run the hub (serve, migrate, token) and talk to one (connect, agent, tools).

companion-ws serve [--host H] [--port P] [--database-url URL] [--broker-url URL] [--tools M ...]
companion-ws migrate [--database-url URL]
companion-ws token --sub USER [--admin] [--ttl 3600] [--session ID]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from typing import Any

from companion_ws import devtokens, reach, telemetry, workers
from companion_ws.settings import Settings


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    overrides: dict[str, Any] = {
        "database_url": getattr(args, "database_url", None),
        "broker_url": getattr(args, "broker_url", None),
        "tools": tuple(args.tools) if getattr(args, "tools", None) else None,
        "grpc_port": getattr(args, "grpc_port", None),
        "grpc_host": getattr(args, "grpc_host", None),
        "bus_url": getattr(args, "bus_url", None),
        **extra,
    }
    return Settings.from_env(os.environ, **overrides)


def _server_class() -> type:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, telling the hub when its shutdown starts: uvicorn then waits
        for open HTTP responses (up to ``--shutdown-timeout``), so the long-lived ones
        (the AG-UI streams) must end first."""

        def __init__(self, config: uvicorn.Config, *, drain: Callable[[], None]) -> None:
            super().__init__(config)
            self._drain = drain

        async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
            self._drain()
            await super().shutdown(sockets)

    return Server


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from companion_ws.app import create_app
    from companion_ws.endpoints.http_protocol import http_protocol
    from companion_ws.endpoints.socket_protocol import SocketProtocol
    from companion_ws.logs import LOG_FORMATS, log_config
    from companion_ws.startup import StartupError, check_port, check_schema, warn_about

    settings = _settings(args, log_format=args.log_format)
    if (why := workers.refusal(settings.broker_url, args.workers)) is not None:
        print(f"companion-ws: {why}", file=sys.stderr)
        return 2
    if settings.log_format not in LOG_FORMATS:
        print(
            f"companion-ws: COMPANION_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}",
            file=sys.stderr,
        )
        return 2
    try:
        http = http_protocol(settings.max_header_bytes, settings.header_timeout)
    except ValueError as exc:
        print(f"companion-ws: {exc}", file=sys.stderr)
        return 2
    if args.migrate:
        settings = settings.replace(auto_migrate=True)
    generated = settings.verifying_key is None and not settings.jwt_jwks_url
    if generated and not args.dev and not devtokens.is_loopback(args.host):
        print(f"companion-ws: {devtokens.refusal(args.host)}", file=sys.stderr)
        return 2
    if generated:
        key = devtokens.key_file(settings.database_url)
        try:
            secret = devtokens.development_key(key)
        except OSError as exc:
            print(
                f"companion-ws: cannot keep the development key in {key} ({exc.strerror}): "
                "set COMPANION_JWT_SECRET",
                file=sys.stderr,
            )
            return 2
        settings = settings.replace(jwt_secret=secret, jwt_algorithm="HS256")
    if traces := telemetry.configure(os.environ):  # off unless OTEL_* asks for traces
        print(f"companion-ws: {traces}", file=sys.stderr, flush=True)
    try:
        if not args.reuse_port:  # a worker shares the port with its siblings
            check_port(args.host, args.port)
        app = create_app(settings)
        asyncio.run(check_schema(settings, _safe_url(settings.database_url)))
    except (StartupError, RuntimeError) as exc:
        print(f"companion-ws: {exc}", file=sys.stderr)
        return 2
    for warning in warn_about(settings):
        if settings.log_format == "json":
            line = {"level": "warning", "logger": "companion_ws.startup", "message": warning}
            print(json.dumps(line), file=sys.stderr, flush=True)
        else:
            print(f"companion-ws: warning: {warning}", file=sys.stderr, flush=True)
    from companion_ws.reach import ALL_INTERFACES, lan_links, printed_base, tls_files

    try:
        tls = tls_files(args, settings.database_url)
    except (OSError, ValueError) as exc:
        print(f"companion-ws: {exc}", file=sys.stderr)
        return 2
    base = printed_base(args.host, args.port, tls=tls is not None, public_url=settings.public_url)
    if args.host in ALL_INTERFACES:  # join links opened on this machine name its LAN address
        lan_links(app, printed_base(args.host, args.port, tls=tls is not None, public_url=None))
    if generated:
        if not _announce_dev_tokens(settings, base, args.dev_token_ttl):
            return 2
    elif settings.log_format == "text":  # a log pipeline (json) gets log lines only
        print(
            f"companion-ws: serving on {base}\n"
            f"  companion UI  {base}/?token=<a token: companion-ws token --sub USER>\n"
            f"  WebSocket     {base.replace('http', 'ws', 1)}/ws\n",
            flush=True,
        )
    if args.workers > 1:
        return workers.supervise(args.argv, args.workers, args.host, args.port)
    config = uvicorn.Config(
        app,
        host=args.host,
        port=args.port,
        ws=SocketProtocol,
        ws_max_size=settings.max_frame_bytes,
        ws_per_message_deflate=False,
        # httptools, with the doors before the token: a bound on each request head's
        # size and time (docs/protocol.md section 4, v1.2). No limit_concurrency: uvicorn
        # counts the open WebSockets in it and acts only once a head is complete.
        http=http,
        loop="uvloop",
        log_config=log_config(args.log_level, settings.log_format),
        log_level=args.log_level,
        access_log=not args.no_access_log,
        timeout_graceful_shutdown=args.shutdown_timeout,
        # Off unless asked: behind a proxy it only fixes the client address in logs, and
        # its wrapper would stay suspended on every open socket.
        proxy_headers=args.proxy_headers,
        server_header=False,
        ssl_certfile=str(tls[0]) if tls else None,
        ssl_keyfile=str(tls[1]) if tls else None,
    )
    # Start-up objects (modules, the app) never die: move them out of the collector's
    # sight, and collect less often. Fan-out makes many short-lived objects; with the
    # defaults, full collections over everything paused broadcasts for 35-140 ms
    # (bench/RESULTS-history.md).
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 50, 100)
    # uvicorn re-raises the signal it shut down on: after a graceful SIGTERM, or Ctrl-C
    # (SIGINT, a KeyboardInterrupt once the shutdown is done), exit 0 without a traceback,
    # as `companion-ws demo` does.
    signal.signal(signal.SIGTERM, lambda *_: None)
    sockets = [workers.listening_socket(args.host, args.port)] if args.reuse_port else None
    with contextlib.suppress(KeyboardInterrupt):
        _server_class()(config, drain=app.drain).run(sockets=sockets)
    return 0


def _announce_dev_tokens(settings: Settings, base: str, ttl: float) -> bool:
    """The development tokens of a hub with a random key: on a terminal, printed; on
    anything else (a log), written to a private file whose path is printed. False (and
    said) when that file cannot be written."""
    from companion_ws.app import token_service

    tokens = token_service(settings)
    admin = tokens.mint("dev-admin", ttl=ttl, admin=True)
    user = tokens.mint("dev-user", ttl=ttl)
    terminal = sys.stdout.isatty()
    file = devtokens.token_file(settings.database_url)
    if not terminal:
        try:
            devtokens.write_private(file, "\n".join([*devtokens.links(base, user, admin), ""]))
        except OSError as exc:
            print(
                f"companion-ws: cannot write the development tokens to {file} "
                f"({exc.strerror}): run from a terminal, or set COMPANION_JWT_SECRET",
                file=sys.stderr,
            )
            return False
    key = devtokens.key_file(settings.database_url)
    lines = devtokens.announce(base, user, admin, ttl=ttl, terminal=terminal, file=file, key=key)
    print("\n".join(lines), flush=True)
    return True


def cmd_migrate(args: argparse.Namespace) -> int:
    from companion_ws.store.store import Store

    settings = _settings(args)

    async def run() -> None:
        store = Store(settings.database_url)
        try:
            await store.migrate()
        finally:
            await store.close()

    asyncio.run(run())
    print(f"companion-ws: migrated {_safe_url(settings.database_url)} to head")
    return 0


def _safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


def cmd_token(args: argparse.Namespace) -> int:
    from companion_ws.app import token_service

    settings = _settings(args)
    if settings.signing_key is None:
        print(
            "companion-ws: set COMPANION_JWT_SECRET to mint tokens (with a public key the hub "
            "only verifies tokens your identity provider issues)",
            file=sys.stderr,
        )
        return 2
    tokens = token_service(settings)
    print(
        tokens.mint(
            args.sub,
            ttl=args.ttl,
            admin=args.admin,
            service=args.service,
            session_id=args.session,
        )
    )
    return 0


def _positive_seconds(raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{raw!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{raw} must be more than 0 seconds")
    return value


def _dev_token_ttl(raw: str) -> float:
    value = _positive_seconds(raw)
    if value > devtokens.MAX_TTL:
        raise argparse.ArgumentTypeError(
            f"{raw} is more than {devtokens.MAX_TTL:.0f} seconds (a development token "
            "lives an hour at most)"
        )
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="companion-ws", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the hub")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--database-url")
    serve.add_argument("--broker-url")
    serve.add_argument("--tools", nargs="+", metavar="MODULE")
    serve.add_argument("--grpc-port", type=int, help="serve gRPC (companion.v1) on this port")
    serve.add_argument("--grpc-host", help="the gRPC server's address (default 127.0.0.1)")
    serve.add_argument("--bus-url", help="nats://host:4222 or redis://host:6379/0")
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    serve.add_argument("--no-access-log", action="store_true")
    serve.add_argument(
        "--log-format",
        choices=["text", "json"],
        help="text lines, or one JSON object per line (default: $COMPANION_LOG_FORMAT or text)",
    )
    serve.add_argument(
        "--proxy-headers",
        action="store_true",
        help="trust X-Forwarded-For/-Proto from --forwarded-allow-ips (uvicorn's option)",
    )
    serve.add_argument("--shutdown-timeout", type=float, default=8.0)
    serve.add_argument(
        "--workers",
        type=int,
        default=1,
        help="run N hub processes on the port (one per core; they need a shared broker: "
        "COMPANION_BROKER_URL=redis://... or redis+cluster://...)",
    )
    serve.add_argument(
        "--reuse-port",
        action="store_true",
        help="bind the port with SO_REUSEPORT, beside other processes (what each of "
        "--workers does)",
    )
    serve.add_argument(
        "--migrate",
        action="store_true",
        help="migrate the database to this code's schema before starting (PostgreSQL "
        "is never migrated otherwise; SQLite always is)",
    )
    serve.add_argument(
        "--dev",
        action="store_true",
        help="with no key configured, serve the random key's development tokens on a "
        "non-loopback --host too",
    )
    serve.add_argument(
        "--dev-token-ttl",
        type=_dev_token_ttl,
        default=devtokens.MAX_TTL,
        help=f"seconds the development tokens live (at most {devtokens.MAX_TTL:.0f})",
    )
    reach.add_tls_arguments(serve)
    serve.set_defaults(func=cmd_serve)

    migrate = sub.add_parser("migrate", help="alembic upgrade head on --database-url")
    migrate.add_argument("--database-url")
    migrate.set_defaults(func=cmd_migrate)

    token = sub.add_parser("token", help="mint a token with the configured key")
    token.add_argument("--sub", required=True)
    token.add_argument("--admin", action="store_true")
    token.add_argument("--service", action="store_true")
    token.add_argument(
        "--ttl", type=_positive_seconds, default=3600, help="seconds the token lives (> 0)"
    )
    token.add_argument("--session", help="scope the token to this session")
    token.set_defaults(func=cmd_token)

    from companion_ws.integrations.cli import register as register_agent

    register_agent(sub)
    from companion_ws.integrations.provision import register as register_provision

    register_provision(sub)
    from companion_ws.client_cli import register as register_connect

    register_connect(sub)
    from companion_ws.demo.cli import register as register_demo

    register_demo(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.argv = list(argv) if argv is not None else sys.argv[1:]
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    raise SystemExit(main())
