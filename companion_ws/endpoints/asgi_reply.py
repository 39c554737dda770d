"""An error answered in plain ASGI, for the middlewares that answer before (or instead
of) the Starlette app: the same JSON body as the app's error handlers give."""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import Send

from companion_ws.protocol.codec import encode
from companion_ws.protocol.errors import CompanionError

__all__ = ["send_error"]


async def send_error(
    send: Send, exc: CompanionError, headers: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Answer ``exc`` (its status, ``{"error": ...}``), with ``headers`` added."""
    body = encode({"error": exc.payload()})
    await send(
        {
            "type": "http.response.start",
            "status": exc.http_status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
