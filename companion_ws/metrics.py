"""Prometheus metrics, one registry per app (so several apps can live in one process).

Counted per broadcast, not per socket, to keep the hot path lean."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.connections = Gauge("companion_connections", "Open WebSocket connections", registry=r)
        self.connects = Counter(
            "companion_connects", "Connection attempts by outcome", ["outcome"], registry=r
        )
        self.frames_in = Counter(
            "companion_frames_in", "Client frames received by type", ["type"], registry=r
        )
        self.errors = Counter("companion_errors", "Error replies by code", ["code"], registry=r)
        self.events = Counter(
            "companion_events_published", "Events published by type", ["type"], registry=r
        )
        self.deliveries = Counter(
            "companion_deliveries", "Frames handed to local connections", registry=r
        )
        self.slow_closes = Counter(
            "companion_slow_consumer_closes", "Connections closed with 4409", registry=r
        )
        self.tool_calls = Counter(
            "companion_tool_calls", "Tool calls by outcome", ["tool", "outcome"], registry=r
        )
        self.state_commit_seconds = Histogram(
            "companion_state_commit_seconds", "Time to commit a state change", registry=r
        )
