"""Every HTTP request is answered (docs/protocol.md section 4, "every request is
answered"), as plain ASGI around the Starlette app.

A request whose response has not started within ``COMPANION_REQUEST_TIMEOUT`` seconds
(the database or the broker stalled) is answered 503 ``unavailable`` (retryable) here.
The route's work is not cancelled (a statement cancelled half-way can wedge the SQLite
driver: :mod:`companion_ws.store.uow`): it goes on, and whatever it sends later is
dropped. A response that has started (an AG-UI stream) has no deadline.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from companion_ws import connlog
from companion_ws.endpoints.asgi_reply import send_error
from companion_ws.protocol.errors import Unavailable

__all__ = ["RequestDeadline"]

log = logging.getLogger("companion_ws.http")


class RequestDeadline:
    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self.seconds <= 0:
            await self.app(scope, receive, send)
            return
        answered = started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if answered:
                return  # the 503 went out: the late answer is dropped
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        task = asyncio.ensure_future(self.app(scope, receive, guarded_send))
        done, _ = await asyncio.wait({task}, timeout=self.seconds)
        if done or started:
            await task
            return
        answered = True
        task.add_done_callback(_late)
        exc = Unavailable(
            f"no answer within {self.seconds:g} s (COMPANION_REQUEST_TIMEOUT): the "
            "database or the broker is not answering; the request may still take effect"
        )
        connlog.http_error(scope["method"], scope["path"], exc.http_status, exc.code)
        await send_error(send, exc, [(b"retry-after", b"1")])


def _late(task: asyncio.Task[None]) -> None:
    """A request answered 503 finished after all: its outcome is only logged."""
    if not task.cancelled() and task.exception() is not None:
        log.warning("a request answered 503 failed later: %s", task.exception())
