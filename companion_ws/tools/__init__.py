"""Tools the voice agent (or any client) calls on a session: the registry and the packs."""

__all__ = [
    "registry",
    "shipping",
]
