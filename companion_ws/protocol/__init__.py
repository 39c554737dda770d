"""The wire protocol: client messages, server frames, the codec and close codes. Pure."""

__all__ = [
    "clock",
    "closecodes",
    "codec",
    "export",
    "frames",
    "handshake",
    "messages",
]
