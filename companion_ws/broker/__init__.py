"""Brokers: assign each session's seq, keep its recent history, fan out. Picked by URL."""

from __future__ import annotations

from typing import TYPE_CHECKING

from companion_ws.broker.base import Broker, EventHandler, LeaveHandler, Presence, SeedLoader

__all__ = [
    "Broker",
    "EventHandler",
    "LeaveHandler",
    "Presence",
    "SeedLoader",
    "make_broker",
]

if TYPE_CHECKING:
    from companion_ws.broker.memory import Journal


def make_broker(
    url: str,
    *,
    history_size: int,
    history_ttl: float,
    history_bytes: int,
    presence_ttl: float,
    journal: Journal | None = None,
) -> Broker:
    """The broker for ``url``: ``memory://`` (durable before visible through ``journal``)
    or ``redis://`` / ``redis+cluster://`` (its stream is the durability)."""
    if url.startswith("memory://"):
        from companion_ws.broker.memory import MemoryBroker

        return MemoryBroker(
            history_size=history_size,
            history_ttl=history_ttl,
            history_bytes=history_bytes,
            journal=journal,
        )
    if url.startswith(("redis://", "rediss://", "unix://", "redis+cluster://")):
        from companion_ws.broker.redis import RedisBroker

        return RedisBroker(
            url, history_size=history_size, history_ttl=history_ttl, presence_ttl=presence_ttl
        )
    raise ValueError(
        f"unknown broker URL scheme: {url!r} (use memory://, redis:// or redis+cluster://)"
    )
