"""One WebSocket connection of the client, from the handshake to its close, reported
as a close code whichever way it ends (so one rule, ``should_reconnect``, decides).

The token rides in the handshake as the subprotocol ``bearer.<token>`` beside
``companion.v1`` (docs/protocol.md section 1), never in the URL; a token that is not a valid
subprotocol value goes in ``Authorization: Bearer`` instead."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from companion_ws.protocol.handshake import offer

__all__ = ["Closed", "dial", "read_until_closed"]

log = logging.getLogger("companion_ws.client")

#: How a connection ended: the close code (None: none given) and its reason.
Closed = tuple[int | None, str]
Frame = dict[str, Any]

_MAX_FRAME = 16 * 1024 * 1024
_decode = msgspec.json.Decoder().decode


async def dial(url: str, token: str, open_timeout: float) -> ClientConnection | Closed:
    """Open a connection, or say why not: 1006 (retryable) for a network failure or a
    passing HTTP status, 4000 + the status for a refusal (a 4xx but 408 and 429)."""
    protocols = offer(token)
    headers = {} if len(protocols) > 1 else {"Authorization": f"Bearer {token}"}
    try:
        return await connect(
            url,
            subprotocols=[Subprotocol(p) for p in protocols],
            additional_headers=headers,
            open_timeout=open_timeout,
            max_size=_MAX_FRAME,
        )
    except InvalidStatus as exc:
        status = exc.response.status_code
        if 400 <= status < 500 and status not in (408, 429):
            return 4000 + status, f"HTTP {status} on connect"
        return 1006, f"HTTP {status} on connect"
    except (OSError, TimeoutError, InvalidHandshake) as exc:
        return 1006, f"connect failed: {exc}"


async def read_until_closed(ws: ClientConnection, on_frame: Callable[[Frame], None]) -> Closed:
    """Hand every JSON object the hub sends to ``on_frame`` (skipping anything else, and
    logging a handler's failure) until the connection closes; how it closed."""
    try:
        while True:
            raw = await ws.recv()
            try:
                frame = _decode(raw)
            except msgspec.DecodeError:
                log.warning("ignoring a frame that is not JSON")
                continue
            if not isinstance(frame, dict):
                continue
            try:
                on_frame(frame)
            except Exception:
                log.exception("handling a %r frame failed", frame.get("type"))
    except ConnectionClosed as exc:
        if exc.rcvd is not None:
            return exc.rcvd.code, exc.rcvd.reason
        if exc.sent is not None and exc.sent.code != 1000:
            return exc.sent.code, exc.sent.reason
        return 1006, "the connection dropped"
