"""Broadcast frames written straight to the socket, past the ASGI ``send``.

Through ASGI each delivery is a message dict, an awaited ``send`` and the same text
framed again for every socket. When the server is uvicorn's ``websockets-sansio``
protocol (what ``companion-ws serve`` runs), the frame a broadcast built once
(:func:`companion_ws.protocol.wire.text_frame`) can go to the transport as it is,
whenever the socket could take it at once: open, not closing, and not pushing back
(uvicorn's ``writable``). Otherwise, and under any other server, the outbox queues
the frame and sends it through ASGI as before, so the order of a socket's frames never
changes: a frame goes direct only when nothing is queued ahead of it.
"""

from __future__ import annotations

from typing import Any

from websockets.protocol import State

__all__ = ["DirectWriter", "direct_writer"]

_NEEDS = ("transport", "conn", "writable", "close_sent", "disconnected")


class DirectWriter:
    __slots__ = ("_proto",)

    def __init__(self, proto: Any) -> None:
        self._proto = proto

    def write(self, frame: bytes) -> bool:
        """Write ``frame`` now if the socket takes it without waiting; else False."""
        proto = self._proto
        if (
            proto.disconnected
            or proto.close_sent
            or not proto.writable.is_set()
            or proto.conn.state is not State.OPEN
        ):
            return False
        proto.transport.write(frame)
        return True


def direct_writer(send: Any) -> DirectWriter | None:
    """A writer for the socket behind the ASGI ``send``, when the server is one this
    knows how to write to; None otherwise."""
    proto = getattr(send, "__self__", None)
    if type(proto).__name__ != "WebSocketsSansIOProtocol":
        return None
    if not all(hasattr(proto, name) for name in _NEEDS):
        return None
    return DirectWriter(proto)
