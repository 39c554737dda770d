"""The WebSocket endpoint: the read loop only. It authenticates, joins, then turns each
frame into a typed message for the node and each error into an ``error`` frame or a
close code. A raw ASGI app, so the send path is the server's own ``send``."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import cast
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Receive, Scope, Send

from companion_ws import connlog
from companion_ws.auth.tokens import Principal, TokenService
from companion_ws.endpoints.socket_protocol import direct_writer
from companion_ws.hub.admission import Admission
from companion_ws.hub.commands import CommandRouter
from companion_ws.hub.connection import Connection
from companion_ws.hub.ratelimit import FrameLimiter, KeyedLimiter, Verdict
from companion_ws.metrics import Metrics
from companion_ws.protocol import codec
from companion_ws.protocol.closecodes import Close
from companion_ws.protocol.errors import (
    BadConnectParams,
    BadRequest,
    CompanionError,
    Forbidden,
    Internal,
    NotFound,
    RateLimited,
    TooManyConnections,
    Unavailable,
)
from companion_ws.protocol.handshake import SUBPROTOCOL, token_from
from companion_ws.settings import Settings

log = logging.getLogger("companion_ws.ws")

_CLIENT_KINDS_MAX = 32


def _query(scope: Scope) -> dict[str, list[str]]:
    return parse_qs(scope.get("query_string", b"").decode("latin-1"))


def extract_token(scope: Scope) -> tuple[str | None, str | None]:
    """The token and where it came from: the ``bearer.<token>`` subprotocol (the page,
    the Python client), else ``?token=`` (tools such as wscat), else ``Authorization:
    Bearer``."""
    offered = token_from(list(scope.get("subprotocols") or ()))
    if offered is not None:
        return offered, "subprotocol"
    values = _query(scope).get("token")
    if values:
        return str(values[-1]), "query"
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, credentials = bytes(value).decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return str(credentials.strip()), "header"
    return None, None


class ConnectParams:
    __slots__ = ("client", "device_id", "epoch", "last_seq", "session_id")

    def __init__(self, scope: Scope) -> None:
        query = _query(scope)

        def one(name: str) -> str | None:
            values = query.get(name)
            return values[-1] if values else None

        path_sid = scope.get("path_params", {}).get("session_id")
        query_sid = one("session_id")
        if path_sid and query_sid and path_sid != query_sid:
            raise BadConnectParams("the session id in the path and the query differ")
        self.session_id = path_sid or query_sid or None
        if self.session_id is not None and not (0 < len(self.session_id) <= 64):
            raise BadConnectParams("session_id must be 1 to 64 characters")
        raw_seq = one("last_seq")
        self.last_seq: int | None = None
        if raw_seq is not None:
            if not (raw_seq.isascii() and raw_seq.isdigit()) or len(raw_seq) > 18:
                raise BadConnectParams("last_seq must be a non-negative integer")
            self.last_seq = int(raw_seq)
        self.epoch = one("epoch") or None
        client = one("client") or "ui"
        if (
            len(client) > _CLIENT_KINDS_MAX
            or not client.replace("-", "").replace("_", "").isalnum()
        ):
            raise BadConnectParams("client must be a short name such as ui, agent or backend")
        self.client = client
        self.device_id = one("device_id") or None
        if self.device_id is not None and not (
            len(self.device_id) <= 64 and self.device_id.isascii() and self.device_id.isprintable()
        ):
            raise BadConnectParams("device_id must be at most 64 printable ASCII characters")


async def _no_such_socket(receive: Receive, send: Send) -> None:
    """A WebSocket on another path: refused with HTTP 404 and the JSON error shape of the
    HTTP API (the ASGI WebSocket denial response)."""
    if (await receive())["type"] != "websocket.connect":
        return
    body = codec.encode(
        {"error": NotFound("no WebSocket here: connect to /ws or /ws/{session_id}").payload()}
    )
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "websocket.http.response.start", "status": 404, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


def session_path(path: str) -> str | None:
    """The session id of a WebSocket path: "" for ``/ws``, the id for ``/ws/{id}``,
    None for any other path."""
    if path == "/ws":
        return ""
    if path.startswith("/ws/") and len(path) > 4 and "/" not in path[4:]:
        return path[4:]
    return None


class _Abort:
    """How the outbox cuts off a client that stopped reading: cancel the read loop,
    but only while it waits for the next frame. A task cancelled inside a unit of work
    can leave the SQLite driver waiting forever (companion_ws.store.uow), so a cut that
    comes while the hub works for this socket (joining, replaying, handling a frame)
    takes effect when that work is done: the loop sees ``requested`` and ends."""

    __slots__ = ("_task", "requested", "waiting")

    def __init__(self, task: asyncio.Task[object]) -> None:
        self._task = task
        self.waiting = False  # set by the read loop around ``receive()``
        self.requested = False

    def __call__(self) -> None:
        self.requested = True
        if self.waiting:
            self._task.cancel()


class SocketServer:
    """The ASGI entry point. WebSocket connections on ``/ws`` and ``/ws/{session_id}`` are
    served here; everything else (HTTP, lifespan, other paths) goes to ``fallback``.

    A socket lives for hours, and every coroutine that awaits on its behalf stays
    suspended, with its frame, for all that time. So one frame per socket waits here:
    no middleware or router frames above it, and the handling of each frame
    (:meth:`_on_frame`) exists only while that frame is handled.
    """

    def __init__(
        self,
        admission: Admission,
        commands: CommandRouter,
        tokens: TokenService,
        metrics: Metrics,
        settings: Settings,
        fallback: ASGIApp,
        drain: Callable[[], None] = lambda: None,
    ) -> None:
        #: Called by the server as it starts shutting down (``companion-ws serve``).
        self.drain = drain
        self.admission = admission
        self.commands = commands
        self.tokens = tokens
        self.metrics = metrics
        self.allowed_origins = frozenset(o.rstrip("/") for o in settings.allowed_origins)
        self.rate = (
            settings.rate_limit_per_second,
            settings.rate_limit_burst,
            settings.rate_limit_flood,
        )
        # Connection attempts per client address, before any token check or database work.
        self.connects = KeyedLimiter(settings.connect_rate, settings.connect_burst)
        self.fallback = fallback
        self.request_timeout = settings.request_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket":
            await self.fallback(scope, receive, send)
            return
        session_id = session_path(scope["path"])
        if session_id is None:
            await _no_such_socket(receive, send)
            return
        if session_id:
            scope["path_params"] = {"session_id": session_id}
        if (await receive())["type"] != "websocket.connect":
            return
        # Echo ``companion.v1`` when offered (a browser that offered subprotocols fails
        # a handshake that picks none), never the ``bearer.<token>`` beside it.
        if SUBPROTOCOL in (scope.get("subprotocols") or ()):
            await send({"type": "websocket.accept", "subprotocol": SUBPROTOCOL})
        else:
            await send({"type": "websocket.accept"})
        task = asyncio.current_task()
        assert task is not None
        abort = _Abort(task)
        conn: Connection | None = None
        principal: Principal | None = None
        params: ConnectParams | None = None
        started = asyncio.get_running_loop().time()
        client_close: tuple[int, str] | None = None
        try:
            client = scope.get("client")
            if not self.connects.take(str(client[0]) if client else ""):
                raise TooManyConnections("too many connection attempts: slow down")
            principal = self._authenticate(scope)
            params = ConnectParams(scope)
            conn = await self.admission.join(
                principal,
                send=send,
                abort=abort,
                requested=params.session_id,
                client=params.client,
                last_seq=params.last_seq,
                epoch=params.epoch,
                device_id=params.device_id,
                direct=direct_writer(send),
            )
            self.metrics.connects.labels("ok").inc()
            if connlog.enabled():
                connlog.accepted(
                    conn,
                    connlog.scope_peer(scope),
                    resumed=params.last_seq is not None,
                    via=extract_token(scope)[1],
                )
            # The handshake's headers, subprotocols and query (the token among them) are
            # no longer needed; the server keeps the scope for the socket's lifetime.
            scope["headers"] = []
            scope["query_string"] = b""
            scope["subprotocols"] = []
            while not abort.requested:
                # Inline rather than a helper coroutine: no extra frame per idle socket.
                abort.waiting = True
                message = await receive()
                abort.waiting = False
                if message["type"] == "websocket.disconnect":
                    client_close = (int(message.get("code") or 1005), message.get("reason") or "")
                    break
                if message["type"] == "websocket.receive":
                    conn.frames_in += 1
                    await self._on_frame(conn, message.get("text"))
        except CompanionError as exc:
            self.metrics.connects.labels(exc.code).inc()
            if conn is None:
                self._log_refused(exc, principal, params, scope)
            await self._refuse(send, exc, conn)
        except asyncio.CancelledError:
            # The outbox gave up on a client that stopped reading (it set ``closed``
            # before cancelling us): end quietly. Any other cancellation propagates.
            if conn is None or not conn.outbox.closed:
                raise
            task.uncancel()
        except Exception:
            log.exception("connection failed")
            if conn is None:
                self._log_refused(Internal(), principal, params, scope)
            await self._refuse(send, Internal(), conn)
        finally:
            if conn is not None:
                if connlog.enabled():
                    took = asyncio.get_running_loop().time() - started
                    self._log_closed(conn, client_close, took)
                await self.admission.leave(conn)

    @staticmethod
    def _log_refused(
        exc: CompanionError,
        principal: Principal | None,
        params: ConnectParams | None,
        scope: Scope,
    ) -> None:
        if not connlog.enabled():
            return
        connlog.refused(
            exc.close_code or Close.INTERNAL,
            exc.message[:120],
            error=exc.code,
            principal=principal,
            session=params.session_id if params is not None else None,
            client=params.client if params is not None else None,
            via=extract_token(scope)[1],
            peer=connlog.scope_peer(scope),
        )

    @staticmethod
    def _log_closed(conn: Connection, client_close: tuple[int, str] | None, took: float) -> None:
        """The hub's close wins (it was sent first: the client's is its echo); else the
        client's; else the socket just went (1006)."""
        server_close = conn.outbox.closing
        if server_close is not None:
            code, reason, by = *server_close, "server"
        elif client_close is not None:
            # uvicorn's own shutdown reads as a disconnect with 1012.
            code, reason = client_close
            by = "server" if code == Close.RESTARTING else "client"
        else:
            code, reason, by = 1006, "", "client"
        connlog.closed(conn, code, reason, by=by, duration=took)

    def _authenticate(self, scope: Scope) -> Principal:
        """The origin (4403), then the token (4401): before any parameter is looked at."""
        if self.allowed_origins:
            origin = dict(scope.get("headers", [])).get(b"origin")
            if (
                origin is not None
                and origin.decode("latin-1").rstrip("/") not in self.allowed_origins
            ):
                raise Forbidden("this origin is not allowed to connect")
        token, _ = extract_token(scope)
        return self.tokens.verify(token)

    async def _refuse(self, send: Send, exc: CompanionError, conn: Connection | None) -> None:
        sid = conn.session_id if conn is not None else ""
        text = self.commands.error(sid, exc, None)
        code = exc.close_code or Close.INTERNAL
        try:
            if conn is not None:
                conn.send(text)
                conn.outbox.close(code, exc.message[:120])
                return
            await send({"type": "websocket.send", "text": text})
            await send({"type": "websocket.close", "code": code, "reason": exc.message[:120]})
        except Exception:
            pass  # the client is already gone

    def _stalled(self, conn: Connection, request_id: str | None) -> None:
        """A frame still in hand after ``request_timeout``: answer ``unavailable`` now and
        close 1011, so that no late answer follows (the work goes on; the client resumes
        and finds its effect, if any, in the history)."""
        exc = Unavailable(
            f"no answer within {self.request_timeout:g} s (COMPANION_REQUEST_TIMEOUT): the "
            "database or the broker is not answering; the request may still take effect"
        )
        log.warning("a %s request stalled past %gs: closing 1011", conn.id, self.request_timeout)
        conn.send(self.commands.error(conn.session_id, exc, request_id))
        conn.outbox.close(Close.INTERNAL, "a request stalled: resume")

    async def _on_frame(self, conn: Connection, data: str | None) -> None:
        """One client frame: rate-limit (every frame, valid or not, before it is
        decoded), decode, hand to the node; errors become ``error`` frames (and a close,
        for the errors that carry a close code)."""
        request_id: str | None = None
        try:
            limiter = conn.bucket
            if limiter is None:
                limiter = conn.bucket = FrameLimiter(*self.rate)
            verdict = cast(FrameLimiter, limiter).check()
            if verdict is Verdict.FLOOD:
                # It kept sending after being told: one error, then 4429 (the frames
                # that still arrive before the close are dropped by the closed outbox).
                raise TooManyConnections("too many messages after rate_limited: closing")
            if verdict is Verdict.LIMITED:
                if data is not None:
                    request_id = codec.request_id_of(data)
                raise RateLimited("too many messages: slow down")
            if data is None:
                raise BadRequest("binary frames are not supported: send JSON as text")
            try:
                msg = codec.decode(data)
            except CompanionError:
                request_id = codec.request_id_of(data)
                raise
            request_id = msg.requestId
            self.metrics.frames_in.labels(type(msg).__struct_config__.tag).inc()
            # Every request is answered (docs/protocol.md section 4): a timer, not a
            # cancellation (DB work cancelled half-way can wedge the SQLite driver).
            timer = asyncio.get_running_loop().call_later(
                self.request_timeout, self._stalled, conn, request_id
            )
            try:
                await self.commands.handle(conn, msg)
            finally:
                timer.cancel()
        except CompanionError as exc:
            conn.send(self.commands.error(conn.session_id, exc, request_id))
            if exc.close_code is not None:
                conn.outbox.close(exc.close_code, exc.message[:120])
        except Exception:
            log.exception("handling a frame failed")
            conn.send(self.commands.error(conn.session_id, Internal(), request_id))
