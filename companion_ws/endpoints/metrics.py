"""Prometheus text format."""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from companion_ws.endpoints.common import node_of


async def metrics(request: Request) -> Response:
    node = node_of(request)
    return Response(generate_latest(node.metrics.registry), media_type=CONTENT_TYPE_LATEST)


routes = [Route("/metrics", metrics)]
