"""Liveness and readiness."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from companion_ws.endpoints.common import JSON, node_of


async def healthz(request: Request) -> Response:
    return JSON({"status": "ok"})


async def readyz(request: Request) -> Response:
    checks = await node_of(request).ready()
    ready = all(checks.values())
    return JSON(
        {"status": "ready" if ready else "unavailable", **checks},
        status_code=200 if ready else 503,
    )


routes = [Route("/healthz", healthz), Route("/readyz", readyz)]
