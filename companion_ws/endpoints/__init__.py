"""HTTP and WebSocket endpoints: thin adapters over the node."""

__all__ = [
    "common",
    "elevenlabs",
    "health",
    "metrics",
    "sessions",
    "ui",
    "ws",
]
