"""Liveness and readiness."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from companion_ws.endpoints.common import JSON, node_of


async def healthz(request: Request) -> Response:
    return JSON({"status": "ok"})


async def readyz(request: Request) -> Response:
    node = node_of(request)
    database = await node.store.ping()
    try:
        broker = await node.broker.ping()
    except Exception:
        broker = False
    ready = database and broker
    return JSON(
        {"status": "ready" if ready else "unavailable", "database": database, "broker": broker},
        status_code=200 if ready else 503,
    )


routes = [Route("/healthz", healthz), Route("/readyz", readyz)]
