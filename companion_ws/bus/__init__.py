"""The message-bus bridge (docs/protocol.md section 15): NATS JetStream or Redis Streams,
picked by the URL's scheme."""

from __future__ import annotations

from companion_ws.bus.base import Bus, BusConfig, Handler

__all__ = ["Bus", "BusConfig", "Handler", "make_bus"]


def make_bus(config: BusConfig) -> Bus:
    scheme = config.url.split("://", 1)[0].lower()
    if scheme in ("nats", "tls"):
        from companion_ws.bus.nats import NatsBus

        return NatsBus(config)
    if scheme in ("redis", "rediss", "unix"):
        from companion_ws.bus.redis_streams import RedisStreamsBus

        return RedisStreamsBus(config)
    raise ValueError(f"COMPANION_BUS_URL: unknown scheme {scheme!r} (nats:// or redis://)")
