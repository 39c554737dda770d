"""Brokers: assign each session's seq, keep its recent history, fan out. Picked by URL."""

from __future__ import annotations

from companion_ws.broker.base import (
    Broker,
    Event,
    EventHandler,
    HistorySlice,
    Leave,
    LeaveHandler,
    Position,
    Presence,
    Seed,
    SeedLoader,
    new_epoch,
)

__all__ = [
    "Broker",
    "Event",
    "EventHandler",
    "HistorySlice",
    "Leave",
    "LeaveHandler",
    "Position",
    "Presence",
    "Seed",
    "SeedLoader",
    "make_broker",
    "new_epoch",
]


def make_broker(url: str, *, history_size: int, history_ttl: float, presence_ttl: float) -> Broker:
    """The broker for ``url``'s scheme (memory://, redis://, rediss://, unix://),
    imported only when chosen."""
    if url.startswith("memory://"):
        from companion_ws.broker.memory import MemoryBroker

        return MemoryBroker(history_size=history_size, history_ttl=history_ttl)
    if url.startswith(("redis://", "rediss://", "unix://")):
        from companion_ws.broker.redis import RedisBroker

        return RedisBroker(
            url, history_size=history_size, history_ttl=history_ttl, presence_ttl=presence_ttl
        )
    raise ValueError(f"unknown broker URL scheme: {url!r} (use memory:// or redis://)")
