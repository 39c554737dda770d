"""A bound on HTTP request bodies, as plain ASGI around the Starlette app.

A body announced larger than the limit (``Content-Length``) is answered 413
``payload_too_large`` at once, unread. A body without a length (chunked) is counted as
it streams in: the chunk that crosses the limit raises :class:`PayloadTooLarge` inside
the route's ``request.body()``, which the app's error handler answers with the same
413. So no route, the signed webhooks included, ever holds more than the limit of one
body in memory. What the client still sends of a refused body is discarded by the
server as it arrives (uvicorn drops the body of a request already answered), so the
client reads its 413 rather than a connection reset in the middle of its upload.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from companion_ws import connlog
from companion_ws.endpoints.asgi_reply import send_error
from companion_ws.protocol.errors import PayloadTooLarge


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_bytes
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = 0  # the server refuses a malformed length itself
                if length > limit:
                    await send_error(send, self._error())
                    return
                break
        received = 0
        started = False

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise self._error()
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted_receive, watched_send)
        except PayloadTooLarge as exc:
            # Raised where no error handler caught it (outside a route): answer here.
            if started:
                raise
            connlog.http_error(scope["method"], scope["path"], exc.http_status, exc.code)
            await send_error(send, exc)

    def _error(self) -> PayloadTooLarge:
        return PayloadTooLarge(f"the request body is larger than {self.max_bytes} bytes")
