"""The hub's WebSocket protocol under uvicorn: ``uvicorn.Config(ws=SocketProtocol)``.

uvicorn parses the HTTP request and, on an upgrade, hands the socket to this class
(its ``ws`` protocol class); from there the WebSocket is this class's, speaking the
ASGI WebSocket interface to the app over the sans-I/O ``websockets.ServerProtocol``.
It does what uvicorn's ``websockets-sansio`` protocol does, with what a hub of many
long-lived, mostly idle sockets needs instead of a general server's per-socket objects
(issue 13, bench/README.md "The server under /ws"):

- **Nothing kept per socket that the socket does not need**: ``__slots__``, the
  handshake's request and response dropped once answered, no ``asyncio.Queue`` or
  ``asyncio.Event`` (a received message goes straight to the app's waiting
  ``receive()``, and only a message that arrives while the app is busy is kept, in a
  deque made on demand), the server-wide settings in one shared object.
- **Reading is paused only when the app is behind**, not after every frame.
- **A broadcast's frame, built once, is written as it is** (:meth:`write`, the
  outbox's direct path) when the socket takes it at once.

The rest is uvicorn's behaviour, kept: keepalive pings with a pong deadline
(``ws_ping_interval``, ``ws_ping_timeout``), ``ws_max_size``, the denial response
(``websocket.http.response``), 403 for a close before the accept, 500 when the app
fails before it, 1012 to every open socket on shutdown, the closing handshake with a
10 s deadline, and the socket registered in ``server_state.connections`` and its task
in ``server_state.tasks`` so that uvicorn's shutdown sees both.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import struct
import weakref
from collections import deque
from http import HTTPStatus
from typing import Any, cast
from urllib.parse import unquote

from websockets.datastructures import Headers
from websockets.frames import Frame, Opcode
from websockets.http11 import Request, Response
from websockets.protocol import State
from websockets.server import ServerProtocol

from companion_ws.protocol.wire import text_frame

__all__ = ["ClientGone", "SocketProtocol", "direct_writer"]

log = logging.getLogger("uvicorn.error")

Message = dict[str, Any]

_CLOSE_TIMEOUT = 10.0  # for the peer's answer to our close frame, as uvicorn


class ClientGone(OSError):
    """``send`` on a socket whose client is gone."""


class _Shared:
    """What every socket of one server reads: set once, from uvicorn's config."""

    __slots__ = (
        "app",
        "app_state",
        "asgi",
        "connections",
        "default_headers",
        "max_size",
        "ping_interval",
        "ping_timeout",
        "root_path",
        "tasks",
    )

    def __init__(self, config: Any, server_state: Any, app_state: dict[str, Any]) -> None:
        if not config.loaded:
            config.load()
        self.app = config.loaded_app
        self.app_state = app_state
        self.asgi = {"version": config.asgi_version, "spec_version": "2.4"}
        self.root_path: str = config.root_path
        self.max_size: int | None = config.ws_max_size
        self.ping_interval: float | None = config.ws_ping_interval
        self.ping_timeout: float | None = config.ws_ping_timeout
        self.connections: set[Any] = server_state.connections
        self.tasks: set[asyncio.Task[None]] = server_state.tasks
        self.default_headers: list[tuple[bytes, bytes]] = server_state.default_headers


_shared: weakref.WeakKeyDictionary[Any, _Shared] = weakref.WeakKeyDictionary()  # per server


class SocketProtocol(asyncio.Protocol):
    __slots__ = (
        "_close_timer",
        "_denial",
        "_ended",
        "_fragments",
        "_pending",
        "_ping_payload",
        "_ping_sent_at",
        "_ping_timer",
        "_pong_timer",
        "_read_paused",
        "_response",
        "_rtt",
        "_scope",
        "_shared",
        "_waiter",
        "_writable",
        "close_sent",
        "conn",
        "disconnected",
        "handshake_complete",
        "loop",
        "transport",
    )

    def __init__(
        self,
        config: Any,
        server_state: Any,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        shared = _shared.get(server_state)
        if shared is None:
            shared = _shared[server_state] = _Shared(config, server_state, app_state)
        self._shared = shared
        self.loop = _loop or asyncio.get_event_loop()
        self.transport: asyncio.Transport = cast(asyncio.Transport, None)
        self.conn = ServerProtocol(max_size=shared.max_size, logger=log)
        self._scope: Message | None = None
        self._response: Response | None = None  # between the upgrade and the accept
        self._denial: tuple[int, list[tuple[str, str]], bytes] | None = None
        self.handshake_complete = False
        self.close_sent = False
        self.disconnected = False
        # Messages the app has not asked for yet (a deque while there are any), the
        # app's waiting ``receive()``, and the disconnect once it is known.
        self._pending: deque[Message] | None = None
        self._waiter: asyncio.Future[Message] | None = None
        self._ended: Message | None = None
        self._fragments: list[Frame] | None = None  # of a message still arriving
        self._read_paused = False
        self._writable: asyncio.Future[None] | None = None  # set while writing is paused
        self._close_timer: asyncio.TimerHandle | None = None
        self._ping_timer: asyncio.TimerHandle | None = None
        self._pong_timer: asyncio.TimerHandle | None = None
        self._ping_payload: bytes | None = None
        self._ping_sent_at = 0.0
        self._rtt = 0.0

    # -- the transport's side ---------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)
        self._shared.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_keepalive()
        self._to_app(
            {"type": "websocket.disconnect", "code": 1005 if self.handshake_complete else 1006}
        )
        self._shared.connections.discard(self)
        self.handshake_complete = True
        self.disconnected = True
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)  # nothing will drain now: wake the writers
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        if exc is None:
            self.transport.close()

    def eof_received(self) -> None:
        pass

    def pause_writing(self) -> None:
        if self._writable is None:
            self._writable = self.loop.create_future()

    def resume_writing(self) -> None:
        writable, self._writable = self._writable, None
        if writable is not None and not writable.done():
            writable.set_result(None)

    def data_received(self, data: bytes) -> None:
        conn = self.conn
        conn.receive_data(data)
        for event in conn.events_received():
            if isinstance(event, Frame):
                self._on_frame(event)
            elif isinstance(event, Request):
                self._on_upgrade(event)
        if conn.parser_exc is not None:
            self._on_parser_error()

    def shutdown(self) -> None:
        """uvicorn is shutting down: close with 1012 (restarting)."""
        self._stop_keepalive()
        if self.close_sent:
            if self._close_timer is not None:
                self._close_timer.cancel()
                self._close_timer = None
        elif self.handshake_complete:
            self._to_app({"type": "websocket.disconnect", "code": 1012})
            self.conn.send_close(1012)
            self._flush()
        else:
            self._send_500()
        self.transport.close()

    # -- what the client sent ---------------------------------------------------

    def _on_upgrade(self, request: Request) -> None:
        response = self.conn.accept(request)
        if response.status_code != 101:  # not a valid WebSocket upgrade
            self.handshake_complete = self.close_sent = True
            self.conn.send_response(response)
            self._flush()
            self.transport.close()
            return
        self._response = response
        shared = self._shared
        raw_path, _, query = request.path.partition("?")
        subprotocols: list[str] = []
        for header in request.headers.get_all("Sec-WebSocket-Protocol"):
            subprotocols.extend(token.strip() for token in header.split(","))
        transport = self.transport
        server = transport.get_extra_info("sockname")
        client = transport.get_extra_info("peername")
        self._scope = {
            "type": "websocket",
            "asgi": shared.asgi,
            "http_version": "1.1",
            "scheme": "wss" if transport.get_extra_info("sslcontext") else "ws",
            "server": tuple(server[:2]) if isinstance(server, tuple) else None,
            "client": tuple(client[:2]) if isinstance(client, tuple) else None,
            "root_path": shared.root_path,
            "path": shared.root_path + unquote(raw_path),
            "raw_path": (shared.root_path + raw_path).encode("ascii"),
            "query_string": query.encode("ascii"),
            "headers": [
                (name.lower().encode("ascii"), value.encode("latin-1"))
                for name, value in request.headers.raw_items()
            ],
            "subprotocols": subprotocols,
            "state": shared.app_state.copy(),
            "extensions": {"websocket.http.response": {}},
        }
        self._to_app({"type": "websocket.connect"})
        task = self.loop.create_task(self._run_app())
        shared.tasks.add(task)
        task.add_done_callback(shared.tasks.discard)

    def _on_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.TEXT or opcode is Opcode.BINARY or opcode is Opcode.CONT:
            self._on_data(frame)
        elif opcode is Opcode.PING:
            self._flush()  # ServerProtocol queued the pong
        elif opcode is Opcode.PONG:
            self._on_pong(bytes(frame.data))
        elif opcode is Opcode.CLOSE:
            self._on_close()

    def _on_data(self, frame: Frame) -> None:
        if frame.opcode is Opcode.CONT or not frame.fin:
            self._fragment(frame)
            return
        if frame.opcode is Opcode.TEXT:
            try:
                text = bytes(frame.data).decode()
            except UnicodeDecodeError:
                self.conn.fail(1007, "invalid UTF-8")
                self._on_parser_error()
                return
            message: Message = {"type": "websocket.receive", "text": text}
        else:
            message = {"type": "websocket.receive", "bytes": bytes(frame.data)}
        if not self.close_sent:  # past its close the app reads no more messages
            self._to_app(message)

    def _fragment(self, frame: Frame) -> None:
        """A fragment of a message: kept until the last one (ServerProtocol checks
        their order and the message's size)."""
        fragments = self._fragments
        if fragments is None:
            fragments = self._fragments = []
        fragments.append(frame)
        if frame.fin:
            self._fragments = None
            data = b"".join(bytes(part.data) for part in fragments)
            self._on_data(Frame(fragments[0].opcode, data, fin=True))

    def _on_pong(self, payload: bytes) -> None:
        if self._ping_payload is None or payload != self._ping_payload:
            return  # unsolicited, or an answer to an older ping
        self._rtt = self.loop.time() - self._ping_sent_at
        self._ping_payload = None
        if self._pong_timer is not None:
            self._pong_timer.cancel()
            self._pong_timer = None
            self._schedule_ping()

    def _on_close(self) -> None:
        if self.close_sent:
            # The peer answered our close: the closing handshake is complete.
            if self._close_timer is not None:
                self._close_timer.cancel()
                self._close_timer = None
                self.transport.close()
            return
        if not self.transport.is_closing():
            rcvd = self.conn.close_rcvd
            self._to_app(
                {
                    "type": "websocket.disconnect",
                    "code": rcvd.code if rcvd is not None else 1005,
                    "reason": rcvd.reason if rcvd is not None else "",
                }
            )
            self._flush()  # ServerProtocol queued the echo of the close
            self.transport.close()

    def _on_parser_error(self) -> None:
        sent = self.conn.close_sent
        code, reason = (sent.code, sent.reason) if sent is not None else (1002, "")
        self._to_app({"type": "websocket.disconnect", "code": code, "reason": reason})
        self._flush()
        self.close_sent = True
        self.transport.close()

    # -- the app's side -----------------------------------------------------------

    def _to_app(self, message: Message) -> None:
        """Hand ``message`` to the app: to its waiting ``receive()``, else keep it
        (and stop reading until the app catches up). After a disconnect, nothing."""
        if self._ended is not None:
            return
        if message["type"] == "websocket.disconnect":
            self._ended = message
        waiter = self._waiter
        if waiter is not None and not waiter.done() and self._pending is None:
            self._waiter = None
            waiter.set_result(message)
            return
        pending = self._pending
        if pending is None:
            pending = self._pending = deque()
        pending.append(message)
        if not self._read_paused and self._ended is None:
            self._read_paused = True
            self.transport.pause_reading()

    async def receive(self) -> Message:
        pending = self._pending
        if pending:
            message = pending.popleft()
            if not pending:
                self._pending = None
                self._resume_reading()
            return message
        if self._ended is not None:
            return self._ended  # it stays disconnected
        waiter: asyncio.Future[Message] = self.loop.create_future()
        self._waiter = waiter
        try:
            return await waiter
        finally:
            if self._waiter is waiter:
                self._waiter = None

    def _resume_reading(self) -> None:
        if self._read_paused:
            self._read_paused = False
            if not self.transport.is_closing():
                self.transport.resume_reading()

    async def _run_app(self) -> None:
        try:
            result = await self._shared.app(self._scope, self.receive, self.send)
        except ClientGone:
            pass
        except BaseException:
            log.exception("Exception in ASGI application\n")
            self._send_500()
        else:
            if not self.handshake_complete:
                log.error("ASGI callable returned without completing handshake.")
                self._send_500()
            elif result is not None:
                log.error("ASGI callable should return None, but returned '%s'.", result)
        if self._close_timer is None:
            self.transport.close()

    def write(self, frame: bytes) -> bool:
        """Write a whole frame now if the socket takes it without waiting (open, not
        closing, not pushing back); else False and nothing is written."""
        if (
            self._writable is not None
            or self.close_sent
            or self.disconnected
            or self.conn.state is not State.OPEN
        ):
            return False
        self.transport.write(frame)
        return True

    async def send(self, message: Message) -> None:
        writable = self._writable
        if writable is not None:
            # Shielded: a sender cancelled while it waits must not cancel the others' wait.
            await asyncio.shield(writable)
        if self.disconnected:
            raise ClientGone()
        kind = message["type"]
        if self._denial is not None:
            self._denial_body(message)
        elif not self.handshake_complete:
            self._before_accept(message)
        elif self.close_sent:
            raise RuntimeError(
                f"Unexpected ASGI message '{kind}', after sending 'websocket.close'."
            )
        elif kind == "websocket.send":
            if self.conn.state is not State.OPEN:
                raise ClientGone()
            text = message.get("text")
            data = message.get("bytes")
            if text is not None:
                self.transport.write(text_frame(text.encode()))
            elif data is not None:
                self.conn.send_binary(data)
                self._flush()
        elif kind == "websocket.close":
            self._close(message.get("code") or 1000, message.get("reason") or "")
        else:
            raise RuntimeError(
                f"Expected ASGI message 'websocket.send' or 'websocket.close', but got '{kind}'."
            )

    def _before_accept(self, message: Message) -> None:
        kind = message["type"]
        response = self._response
        assert response is not None
        if kind == "websocket.accept":
            fields = response.headers
            del fields["Date"]  # uvicorn's default headers carry its own
            for name, value in self._shared.default_headers + list(message.get("headers") or ()):
                fields[name.decode("latin-1")] = value.decode("latin-1")
            if message.get("subprotocol"):
                fields["Sec-WebSocket-Protocol"] = message["subprotocol"]
            self._response = self._scope = None  # the app holds the scope while it needs it
            if not self.transport.is_closing():
                self.handshake_complete = True
                self.conn.send_response(response)
                self._flush()
                self._start_keepalive()
        elif kind == "websocket.close":
            self._to_app({"type": "websocket.disconnect", "code": 1006})
            self._log_status(HTTPStatus.FORBIDDEN)
            self._respond(self.conn.reject(HTTPStatus.FORBIDDEN, ""))
        elif kind == "websocket.http.response.start":
            status = message["status"]
            if not 100 <= status < 600:
                raise RuntimeError(f"Invalid HTTP status code '{status}' in response.")
            self._log_status(status)
            headers = [
                (name.decode("latin-1"), value.decode("latin-1"))
                for name, value in message.get("headers") or ()
            ]
            self._denial = (status, headers, b"")
        else:
            raise RuntimeError(
                "Expected ASGI message 'websocket.accept', 'websocket.close' "
                f"or 'websocket.http.response.start' but got '{kind}'."
            )

    def _denial_body(self, message: Message) -> None:
        if message["type"] != "websocket.http.response.body":
            raise RuntimeError(
                f"Expected ASGI message 'websocket.http.response.body' but got '{message['type']}'."
            )
        assert self._denial is not None
        status, headers, body = self._denial
        body += message.get("body", b"")
        self._denial = (status, headers, body)
        if message.get("more_body", False):
            return
        response_headers = Headers(headers)
        response_headers.setdefault("Date", email.utils.formatdate(usegmt=True))
        response_headers.setdefault("Connection", "close")
        response_headers.setdefault("Content-Length", str(len(body)))
        response_headers.setdefault("Content-Type", "text/plain; charset=utf-8")
        self._to_app({"type": "websocket.disconnect", "code": 1006})
        self._respond(Response(status, _phrase(status), response_headers, body))

    def _respond(self, response: Response) -> None:
        """An HTTP answer instead of the upgrade, then the end of the connection."""
        self.conn.send_response(response)
        self.close_sent = self.handshake_complete = True
        self._response = self._scope = None
        self._flush()
        self.transport.close()

    def _log_status(self, status: int) -> None:
        scope = self._scope or {}
        client = scope.get("client")
        query = scope.get("query_string") or b""
        path = scope.get("path", "") + ("?" + query.decode("ascii") if query else "")
        log.info(
            '%s - "WebSocket %s" %d', f"{client[0]}:{client[1]}" if client else "", path, status
        )

    def _close(self, code: int, reason: str) -> None:
        if self.transport.is_closing():
            return
        self._to_app({"type": "websocket.disconnect", "code": code, "reason": reason})
        self.conn.send_close(code, reason)
        self._flush()
        self.close_sent = True
        self._resume_reading()  # to read the peer's answer
        self._close_timer = self.loop.call_later(_CLOSE_TIMEOUT, self.transport.close)

    def _send_500(self) -> None:
        if self._denial is not None or self.handshake_complete:
            return
        self.conn.send_response(self.conn.reject(500, "Internal Server Error"))
        self._flush()

    def _flush(self) -> None:
        output = self.conn.data_to_send()
        if output:
            self.transport.write(b"".join(output))

    # -- keepalive ----------------------------------------------------------------

    def _start_keepalive(self) -> None:
        interval = self._shared.ping_interval
        if interval is not None and interval > 0:
            self._schedule_ping()

    def _stop_keepalive(self) -> None:
        if self._ping_timer is not None:
            self._ping_timer.cancel()
            self._ping_timer = None
        if self._pong_timer is not None:
            self._pong_timer.cancel()
            self._pong_timer = None
        self._ping_payload = None

    def _schedule_ping(self) -> None:
        interval = self._shared.ping_interval or 0.0
        self._ping_timer = self.loop.call_later(max(0.0, interval - self._rtt), self._ping)

    def _ping(self) -> None:
        self._ping_timer = None
        if self.close_sent or self.transport.is_closing():
            return
        # A random payload tells this ping's pong from a stale or unsolicited one.
        self._ping_payload = struct.pack("!I", random.getrandbits(32))
        self._ping_sent_at = self.loop.time()
        self.conn.send_ping(self._ping_payload)
        self._flush()
        timeout = self._shared.ping_timeout
        if timeout is not None:
            self._pong_timer = self.loop.call_later(timeout, self._no_pong)
        else:
            self._schedule_ping()

    def _no_pong(self) -> None:
        self._pong_timer = None
        self._ping_payload = None
        if self.close_sent or self.transport.is_closing():
            return
        self.conn.fail(1011, "keepalive ping timeout")
        self._flush()
        self.close_sent = True
        self.transport.close()


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def direct_writer(send: Any) -> SocketProtocol | None:
    """The socket behind the ASGI ``send``, when it is one of ours (its :meth:`write`
    takes a framed message); None under any other server (the ASGI ``send`` then)."""
    proto = getattr(send, "__self__", None)
    return proto if isinstance(proto, SocketProtocol) else None
