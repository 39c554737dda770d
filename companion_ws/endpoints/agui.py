"""``GET /sessions/{id}/ag-ui``: the session as a ``text/event-stream`` of AG-UI
protocol events (docs/protocol.md section 13; the mapping is :mod:`companion_ws.agui.projection`).

Each event is one ``data:`` line (``ag_ui.encoder.EventEncoder``); the last event of
each native frame carries ``id: <seq>``, so ``Last-Event-ID`` (or ``?after_seq=``)
resumes after that frame. Anyone who may read the session may follow it, with
``Authorization: Bearer`` or ``?token=`` (an ``EventSource`` cannot send headers).

The response ends when the session ends (``RUN_FINISHED``), when the reader falls
behind (``RUN_ERROR`` ``too_slow``) or stalls a write for :data:`SEND_TIMEOUT`
seconds, when its credential stops being good (``RUN_ERROR`` ``token_expired`` at
``exp`` plus ``COMPANION_REFRESH_GRACE``; ``forbidden`` when its device is revoked),
and when the client goes away. A keep-alive comment goes out after
:data:`~companion_ws.agui.stream.HEARTBEAT` seconds of silence.

Each open stream holds a place in its user's cap (``COMPANION_MAX_STREAMS_PER_USER``,
shared with gRPC streams): the one too many is answered 429 ``too_many_streams``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from companion_ws.auth.tokens import Principal
from companion_ws.endpoints.common import (
    MAX_INT,
    int_param,
    node_of,
    principal,
    settings_of,
    tokens_of,
)
from companion_ws.protocol.errors import BadRequest, Unauthorized

if TYPE_CHECKING:
    from ag_ui.encoder import EventEncoder

    from companion_ws.agui.stream import Item
    from companion_ws.hub.streams import Streams, Ticket

__all__ = ["SEND_TIMEOUT", "EventStream", "routes"]

log = logging.getLogger("companion_ws.agui")

#: A write the reader does not take within this many seconds ends the stream.
SEND_TIMEOUT = 30.0
#: How long the stream may take to wind down after the client left.
CLOSE_GRACE = 10.0
MEDIA_TYPE = "text/event-stream"
_HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}


def _caller(request: Request) -> Principal:
    """The caller, from ``Authorization: Bearer`` or else ``?token=``."""
    if "authorization" in request.headers or "token" not in request.query_params:
        return principal(request)
    who = tokens_of(request).verify(request.query_params["token"])
    if who.is_join:
        raise Unauthorized("a join token only opens a WebSocket")
    return who


def _after(request: Request) -> int | None:
    """The seq to resume after: ``Last-Event-ID``, else ``?after_seq=``; None for none."""
    query = int_param(request, "after_seq", 0) if "after_seq" in request.query_params else None
    raw = request.headers.get("last-event-id")
    if not raw:  # an EventSource with no last event ID sends none (or an empty one)
        return query
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 18 or int(raw) > MAX_INT:
        raise BadRequest("Last-Event-ID must be a seq this stream sent")
    return int(raw)


async def ag_ui(request: Request) -> Response:
    node = node_of(request)
    sid = request.path_params["session_id"]
    who = _caller(request)
    await node.sessions.authorize(who, sid)
    after = _after(request)
    if request.method == "HEAD":
        return Response(media_type=MEDIA_TYPE, headers=_HEADERS)
    # Imported on the first stream, not with the hub: the AG-UI models (pydantic) take
    # ~0.3 s to build, paid at every start of the hub otherwise.
    from companion_ws.agui.stream import SessionStream, StreamLimits

    ticket = node.streams.reserve(who, sid)  # 429 too_many_streams, before any byte
    try:
        limits = StreamLimits(max_bytes=settings_of(request).send_queue_bytes)
        stream = SessionStream(node.recovery, node.listeners, limits)
        stop = asyncio.Event()
        run_id = f"run_{secrets.token_hex(8)}"
        items = stream.follow(sid, after, run_id, stop, ticket)
        return EventStream(items, stop, node.draining, node.streams, ticket)
    except BaseException:
        node.streams.release(ticket)  # the response will never hold it
        raise


def encode(item: Item, encoder: EventEncoder) -> bytes:
    """One SSE event (``id:`` first when the item has a seq), or a keep-alive comment."""
    if item.event is None:
        return b": keep-alive\n\n"
    text = encoder.encode(item.event)
    return (text if item.seq is None else f"id: {item.seq}\n{text}").encode()


class EventStream(StreamingResponse):
    """Writes the items until they end, the client leaves, or a write stalls. It never
    cancels the producer while it reads the session (a database read cancelled midway
    can wedge SQLite): it asks it to stop, and waits a while."""

    def __init__(
        self,
        items: AsyncIterator[Item],
        stop: asyncio.Event,
        draining: asyncio.Event,
        streams: Streams,
        ticket: Ticket,
    ) -> None:
        super().__init__((), media_type=MEDIA_TYPE, headers=_HEADERS)
        self._items = items
        self._stop = stop
        self._draining = draining  # the server is shutting down: end the response
        self._streams = streams
        self._ticket = ticket  # held while the response runs: the credential's end ends it
        self._gone = False  # the client disconnected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async with self._streams.hold(self._ticket):
            await self._respond(receive, send)

    async def _respond(self, receive: Receive, send: Send) -> None:
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        producer = asyncio.create_task(self._produce(send))
        listener = asyncio.create_task(self._disconnected(receive))
        drained = asyncio.create_task(self._draining.wait())
        try:
            await asyncio.wait({producer, listener, drained}, return_when=asyncio.FIRST_COMPLETED)
            self._stop.set()
            listener.cancel()
            drained.cancel()
            try:
                complete = await asyncio.wait_for(producer, CLOSE_GRACE)
            except (TimeoutError, OSError):
                complete = False  # a stalled reader, or one gone mid-write
            except Exception:
                log.exception("the AG-UI stream failed")
                complete = False
        finally:  # cancelled too (the server's shutdown grace ran out): leave no task
            self._stop.set()
            for task in (listener, drained, producer):
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
        if complete and not self._gone:
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def _produce(self, send: Send) -> bool:
        """True when the items ended by themselves (the session ended, say)."""
        from ag_ui.encoder import EventEncoder

        encoder = EventEncoder()
        try:
            async for item in self._items:
                if self._gone:
                    return False
                async with asyncio.timeout(SEND_TIMEOUT):
                    await send(
                        {
                            "type": "http.response.body",
                            "body": encode(item, encoder),
                            "more_body": True,
                        }
                    )
            return True
        finally:
            aclose = getattr(self._items, "aclose", None)
            if aclose is not None:
                await aclose()

    async def _disconnected(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self._gone = True
                return


routes = [Route("/sessions/{session_id}/ag-ui", ag_ui, methods=["GET"])]
