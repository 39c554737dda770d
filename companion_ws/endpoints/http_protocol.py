"""The hub's HTTP protocol under uvicorn: ``uvicorn.Config(http=http_protocol(...))``.

Every byte a client sends before the hub has its token passes here first, WebSocket
upgrades included (uvicorn parses the upgrade request as HTTP, then hands the socket to
:class:`~companion_ws.endpoints.socket_protocol.SocketProtocol`). This is uvicorn's
httptools protocol (the fast parser the benchmarks measure) with the two doors of
docs/protocol.md section 4 (v1.2, "doors before the token") that uvicorn lacks:

- **Size.** A request head (request line and headers) larger than ``max_head_bytes``
  (``COMPANION_MAX_HEADER_BYTES``) is answered ``431 Request Header Fields Too Large``
  with ``Connection: close`` and the connection is closed; the parser is never fed more
  than the limit of one head (:class:`~companion_ws.endpoints.head_meter.HeadMeter`).
  While an earlier request on the connection is still being answered, the connection is
  only closed (a 431 written then would land inside that answer).
- **Time.** A connection that has not sent a whole request head within
  ``head_timeout`` seconds (``COMPANION_HEADER_TIMEOUT``) of its opening, or of the end
  of its previous answer (keep-alive), is closed: a silent connection, a head sent a
  byte at a time, an upgrade that never finishes its headers. The deadline ends with
  the head: a request's body, a long answer (an AG-UI stream) and an upgraded WebSocket
  are not timed by it.

What it relies on in uvicorn beyond the asyncio protocol methods: the httptools parser
callbacks (``on_message_begin``, ``on_headers_complete``, ``on_message_complete``),
``data_received`` handling one feed (400 on a parser error, the WebSocket hand-over on
an upgrade), ``handle_websocket_upgrade``, ``on_response_complete``, and the attributes
``cycle``, ``pipeline``, ``transport``, ``loop``, ``client`` and ``server_state``.
``tests/integration/test_doors.py`` pins each on the installed uvicorn.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from companion_ws import connlog
from companion_ws.endpoints.head_meter import HeadMeter

__all__ = ["HttpProtocol", "http_protocol"]

_TOO_LARGE = b"Request header fields too large"


class HttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol, with a bound on each request head's size and time.
    Configure it with :func:`http_protocol`."""

    max_head_bytes: ClassVar[int] = 16 * 1024
    head_timeout: ClassVar[float] = 10.0

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self._meter = HeadMeter(self.max_head_bytes)
        self._deadline: asyncio.TimerHandle | None = None
        self._upgraded = False

    # -- the transport's side -------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._meter.feed(data, self._parse):
            self._refuse()

    def _parse(self, piece: bytes | memoryview) -> bool:
        """uvicorn's handling of one feed (the parser, 400 on its error, the hand-over on
        an upgrade); False once the connection is no longer this protocol's to feed."""
        super().data_received(piece)  # type: ignore[arg-type]  # httptools takes any buffer
        return not (self._upgraded or self.transport.is_closing())

    # -- what the parser reports --------------------------------------------------------

    def on_message_begin(self) -> None:
        self._meter.begin()
        super().on_message_begin()

    def on_headers_complete(self) -> None:
        self._meter.head_complete()
        self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._meter.message_complete()
        super().on_message_complete()

    def handle_websocket_upgrade(self) -> None:
        self._upgraded = True  # the socket is SocketProtocol's from here
        self._disarm()
        super().handle_websocket_upgrade()

    def on_response_complete(self) -> None:
        """An answer is complete: the next request's head is due within the timeout,
        unless one is already complete and waiting (pipelined)."""
        waiting = bool(self.pipeline)
        super().on_response_complete()
        if not waiting and not self.transport.is_closing():
            self._arm()

    # -- the doors ----------------------------------------------------------------------

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.head_timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        self._log("header_timeout", None)
        self.transport.close()

    def _refuse(self) -> None:
        """431 and the end of the connection; only the end while an earlier request's
        answer is still being written."""
        self._disarm()
        answering = self.cycle is not None and not self.cycle.response_complete
        self._log("header_too_large", None if answering else 431)
        if not answering:
            head = [b"HTTP/1.1 431 Request Header Fields Too Large\r\n"]
            for name, value in self.server_state.default_headers:
                head += [name, b": ", value, b"\r\n"]
            head += [
                b"content-type: text/plain; charset=utf-8\r\n",
                b"content-length: %d\r\n" % len(_TOO_LARGE),
                b"connection: close\r\n\r\n",
                _TOO_LARGE,
            ]
            self.transport.write(b"".join(head))
        self.transport.close()

    def _log(self, reason: str, status: int | None) -> None:
        client = self.client
        connlog.emit(
            connlog.http_log,
            logging.INFO,
            "http_refused",
            {
                "reason": reason,
                "status": status,
                "head_bytes": self._meter.count or None,
                "peer": f"{client[0]}:{client[1]}" if client else None,
            },
        )


def http_protocol(max_head_bytes: int, head_timeout: float) -> type[HttpProtocol]:
    """The hub's HTTP protocol class with these limits, for ``uvicorn.Config(http=...)``
    (uvicorn makes one per connection and passes it only uvicorn's config)."""
    if max_head_bytes < 1:
        raise ValueError(f"COMPANION_MAX_HEADER_BYTES must be at least 1, not {max_head_bytes}")
    if not head_timeout > 0:
        raise ValueError(f"COMPANION_HEADER_TIMEOUT must be more than 0, not {head_timeout}")

    class Configured(HttpProtocol):
        pass

    Configured.__name__ = Configured.__qualname__ = "HttpProtocol"
    Configured.max_head_bytes = max_head_bytes
    Configured.head_timeout = head_timeout
    return Configured
