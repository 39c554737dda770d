"""The operator's page: ``GET /admin`` (the page, with every page's headers) and
``GET /admin/stats`` (admin only: this process's counters as JSON, for its charts).

The stats are read from the app's own Prometheus registry (:mod:`companion_ws.metrics`),
so they are what ``/metrics`` says, summed over labels: one process's view, not the
cluster's.
"""

from __future__ import annotations

import time
from typing import Any

from prometheus_client import CollectorRegistry
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from companion_ws.auth import policy
from companion_ws.endpoints.common import JSON, principal
from companion_ws.endpoints.ui import PAGE_HEADERS, STATIC
from companion_ws.metrics import Metrics

__all__ = ["STATS_SCHEMA", "routes", "stats_of"]

#: The counters the page charts: its name -> the metric family in the registry.
COUNTERS = {
    "connects": "companion_connects",
    "frames_in": "companion_frames_in",
    "events": "companion_events_published",
    "deliveries": "companion_deliveries",
    "slow_consumer_closes": "companion_slow_consumer_closes",
    "tool_calls": "companion_tool_calls",
    "errors": "companion_errors",
}
#: Counters also broken down by one of their labels (event type, tool outcome...).
BREAKDOWNS = {
    "connects": "outcome",
    "events": "type",
    "tool_calls": "outcome",
    "errors": "code",
}


def _families(registry: CollectorRegistry) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Each metric family's samples that carry its value (``_total`` for counters)."""
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in registry.collect():
        wanted = f"{family.name}_total" if family.type == "counter" else family.name
        found[family.name] = [(s.labels, s.value) for s in family.samples if s.name == wanted]
    return found


def stats_of(metrics: Metrics) -> dict[str, Any]:
    """This process's totals: the open connections (a level) and each counter since
    the process started, with the breakdowns of :data:`BREAKDOWNS`."""
    families = _families(metrics.registry)
    counters: dict[str, int] = {}
    breakdown: dict[str, dict[str, int]] = {}
    for key, name in COUNTERS.items():
        samples = families.get(name, [])
        counters[key] = int(sum(value for _, value in samples))
        label = BREAKDOWNS.get(key)
        if label is not None:
            by: dict[str, int] = {}
            for labels, value in samples:
                by[labels.get(label, "")] = by.get(labels.get(label, ""), 0) + int(value)
            breakdown[key] = by
    connections = sum(value for _, value in families.get("companion_connections", []))
    return {
        "timestamp": int(time.time() * 1000),
        "connections": int(connections),
        "counters": counters,
        "breakdown": breakdown,
    }


async def page(request: Request) -> Response:
    return FileResponse(STATIC / "admin.html", headers=PAGE_HEADERS)


async def stats(request: Request) -> Response:
    policy.require_admin(principal(request))
    metrics: Metrics = request.app.state.metrics
    return JSON(stats_of(metrics), headers={"Cache-Control": "no-store"})


_COUNT = {"type": "integer", "minimum": 0}
_BY = {"type": "object", "additionalProperties": _COUNT}

#: The body of ``GET /admin/stats`` (documented in :mod:`companion_ws.endpoints.openapi`).
STATS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["timestamp", "connections", "counters", "breakdown"],
    "properties": {
        "timestamp": {"type": "integer"},
        "connections": _COUNT,
        "counters": {
            "type": "object",
            "required": list(COUNTERS),
            "properties": {key: _COUNT for key in COUNTERS},
        },
        "breakdown": {"type": "object", "properties": {key: _BY for key in BREAKDOWNS}},
    },
}

routes = [Route("/admin", page), Route("/admin/stats", stats)]
