"""The composition root: settings in, a Starlette app out. Nothing happens at import;
resources live in the lifespan."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.exceptions import HTTPException

from companion_ws import failpoints, telemetry
from companion_ws.auth.jwks import JwksKeys
from companion_ws.auth.keys import KeyConfigError, check_keys
from companion_ws.auth.tokens import TokenConfig, TokenService
from companion_ws.backends import start_backends
from companion_ws.broker import make_broker
from companion_ws.broker.base import Broker
from companion_ws.endpoints import (
    admin,
    agui,
    elevenlabs,
    health,
    metrics,
    openapi,
    sessions,
    talk,
    ui,
)
from companion_ws.endpoints.common import (
    error_response,
    http_error_response,
    internal_error_response,
)
from companion_ws.endpoints.deadline import RequestDeadline
from companion_ws.endpoints.keygate import with_key_gate
from companion_ws.endpoints.limits import BodyLimit
from companion_ws.endpoints.ws import SocketServer
from companion_ws.hub.node import Node
from companion_ws.metrics import Metrics
from companion_ws.protocol.errors import CompanionError
from companion_ws.settings import Settings
from companion_ws.store.eventlog import EventLog
from companion_ws.store.store import Store
from companion_ws.tools.registry import ToolRegistry

log = logging.getLogger("companion_ws.app")


def token_service(settings: Settings) -> TokenService:
    """The token service for the settings' keys; :class:`RuntimeError` with a one-line
    reason for a configuration the hub refuses."""
    key = settings.verifying_key
    if key is None and not settings.jwt_jwks_url:
        raise RuntimeError(
            "no JWT key: set COMPANION_JWT_SECRET (HS256), COMPANION_JWT_PUBLIC_KEY "
            "(RS256/ES256) or COMPANION_JWT_JWKS_URL"
        )
    try:
        check_keys(
            settings.jwt_secret,
            settings.jwt_public_key,
            settings.jwt_algorithm,
            settings.jwt_jwks_url,
        )
    except KeyConfigError as exc:
        raise RuntimeError(str(exc)) from None
    jwks = None
    if settings.jwt_jwks_url:
        jwks = JwksKeys(
            settings.jwt_jwks_url,
            lifespan=settings.jwt_jwks_lifespan,
            cooldown=settings.jwt_jwks_cooldown,
        )
    return TokenService(
        TokenConfig(
            jwks=jwks,
            algorithm=settings.jwt_algorithm,
            verifying_key=key or "",
            signing_key=settings.signing_key,
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            admin_claim=settings.admin_claim,
            admin_value=settings.admin_value,
            service_value=settings.service_value,
            leeway=settings.jwt_leeway,
        )
    )


def create_app(
    settings: Settings, *, broker: Broker | None = None, store: Store | None = None
) -> SocketServer:
    failpoints.arm(settings.failpoints)
    tokens = token_service(settings)
    tools = ToolRegistry.from_modules(settings.tools)
    store = store or Store(settings.database_url)
    eventlog = EventLog(
        store,
        interval=settings.event_flush_interval,
        batch=settings.event_flush_batch,
        ttl_ms=int(settings.session_ttl * 1000),
        linger=settings.event_commit_linger,
    )
    broker = broker or make_broker(
        settings.broker_url,
        history_size=settings.history_size,
        history_ttl=settings.history_ttl,
        history_bytes=settings.history_bytes,
        presence_ttl=settings.presence_ttl,
        journal=eventlog,
    )
    counters = Metrics()
    node = Node(
        settings,
        store=store,
        broker=broker,
        tokens=tokens,
        tools=tools,
        metrics=counters,
        eventlog=eventlog,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if settings.migrate_on_start:
            await store.migrate()
        if tokens.jwks is not None:
            await tokens.jwks.prefetch()
        await node.start()
        if not (await node.ready())["broker"]:
            log.warning(
                "the broker at %s does not answer: /readyz says 503 until it does",
                settings.broker_url.split("@")[-1],
            )
        backends = await start_backends(settings, node, tokens)
        try:
            yield
        finally:
            await backends.aclose()
            await node.stop()
            await store.close()

    routes = [
        *health.routes,
        *metrics.routes,
        *openapi.routes,
        *sessions.routes,
        *agui.routes,
        *elevenlabs.routes,
        *talk.routes,
        *ui.routes,
        *admin.routes,
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            CompanionError: error_response,
            HTTPException: http_error_response,
            Exception: internal_error_response,
        },
    )
    app.state.node = node
    app.state.settings = settings
    app.state.tokens = tokens
    app.state.tools = tools
    app.state.metrics = counters
    # The ASGI entry point: sockets on /ws are served directly, the rest by Starlette,
    # behind the bound on request bodies.
    http = telemetry.http_door(
        BodyLimit(RequestDeadline(app, settings.request_timeout), settings.max_body_bytes)
    )
    server = SocketServer(
        node.admission, node.commands, tokens, counters, settings, fallback=http, drain=node.drain
    )
    return with_key_gate(server, tokens)
