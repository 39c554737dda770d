"""An asyncio client that keeps one session live across drops: ``CompanionClient``.

It connects with a token, keeps the session's ``seq`` and ``epoch`` (the last broadcast
frame seen), and on any retryable close (1006, 1011, 1012, 4409, 4429, a network error)
reconnects with exponential backoff and full jitter, passing ``last_seq``/``epoch`` so
the hub replays what was missed (PROTOCOL.md section 4). Broadcast frames reach the
caller exactly once and in ``seq`` order (duplicates are dropped by ``seq``; a gap makes
the client ask for a replay); ``resync_required`` snapshots replace the state. A
terminal close (1000, 4400, 4401, 4403, 4410) stops it for good.

    async with CompanionClient("ws://127.0.0.1:8000", token=tok) as client:
        await client.update_state({"ui": {"step": "quotes"}})
        async for frame in client.events():
            ...

The mirrored state (``state``/``version``) is updated in the read loop before a frame
is handed to ``events()`` iterators and before a request that it answers returns.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import inspect
import logging
import random
import uuid
import weakref
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from companion_ws.protocol.closecodes import should_reconnect
from companion_ws.protocol.frames import DIRECT_TYPES
from ui_state import merge_patch

log = logging.getLogger("companion_ws.client")

Frame = dict[str, Any]
TokenSource = str | Callable[[], str | Awaitable[str]]

#: Frames that answer one client (or describe the connection) rather than being
#: broadcast; their ``seq`` field, where they have one, is not a stream position.
UNSEQUENCED: frozenset[str] = DIRECT_TYPES
#: Frames an ``events()`` iterator may fall behind by before it is cut off.
EVENT_QUEUE_LIMIT = 10_000
_MAX_FRAME = 16 * 1024 * 1024

_decode = msgspec.json.Decoder().decode
_encode = msgspec.json.Encoder().encode


class ClientError(Exception):
    """An ``error`` frame answered a request."""

    def __init__(self, frame: Frame) -> None:
        self.frame = frame
        self.code = str(frame.get("code", "internal"))
        self.message = str(frame.get("message", ""))
        super().__init__(f"{self.code}: {self.message}")


class ClientClosed(ConnectionError):
    """The client has stopped for good: a terminal close code, ``close()``, or
    ``max_attempts`` failed connects in a row. ``error`` is the hub's ``error`` frame
    that came with the close, if any."""

    def __init__(self, code: int | None, reason: str, error: Frame | None = None) -> None:
        self.code = code
        self.reason = reason
        self.error = error
        super().__init__(f"closed ({code}): {reason}" if reason else f"closed ({code})")


class EventStreamOverflow(Exception):
    """An ``events()`` iterator fell more than ``EVENT_QUEUE_LIMIT`` frames behind and
    was cut off: frames after that point were not queued for it. The client itself is
    unaffected; ``client.state`` is still current."""


class EventStream:
    """One ``events()`` iterator: every frame from the moment it was made, through a
    bounded queue of its own. ``aclose()`` (or leaving ``async with``) detaches it."""

    def __init__(self, client: CompanionClient, limit: int) -> None:
        self._client = client
        self._limit = limit
        self._queue: deque[Frame] = deque()
        self._wake = asyncio.Event()
        self._ended = False
        self._overflowed = False

    def _push(self, frame: Frame) -> None:
        if self._ended:
            return
        if len(self._queue) >= self._limit:
            self._overflowed = True
            self._end()
            return
        self._queue.append(frame)
        self._wake.set()

    def _end(self) -> None:
        self._ended = True
        self._wake.set()
        self._client._streams.discard(self)

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Frame:
        while not self._queue:
            if self._ended:
                if self._overflowed:
                    raise EventStreamOverflow(
                        f"this events() iterator fell {self._limit} frames behind"
                    )
                raise StopAsyncIteration
            self._wake.clear()
            await self._wake.wait()
        return self._queue.popleft()

    async def aclose(self) -> None:
        self._queue.clear()
        self._end()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class CompanionClient:
    def __init__(
        self,
        url: str,
        *,
        token: TokenSource,
        session_id: str | None = None,
        client: str = "backend",
        backoff_initial: float = 0.2,
        backoff_max: float = 5.0,
        max_attempts: int | None = None,
        open_timeout: float = 10.0,
    ) -> None:
        self._base = _ws_base(url)
        self._token = token
        self._kind = client
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._max_attempts = max_attempts
        self._open_timeout = open_timeout

        self.session_id: str | None = session_id
        self.connection_id: str | None = None
        self.seq = 0
        self.epoch: str | None = None
        self.state: dict[str, Any] = {}
        self.version = 0
        self.connected = False
        self.reconnects = 0
        self.welcome: Frame = {}
        self.reconnect_token: str | None = None
        self.closed_code: int | None = None
        self.closed_reason = ""
        self.last_close_code: int | None = None  # of the most recent dropped connection

        self._ws: ClientConnection | None = None
        self._runner: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        self._online = asyncio.Event()
        self._closing = False
        self._finished = False
        self._welcomed = False  # ever: reconnects then ask for a replay
        self._welcomed_now = False  # on the current connection
        self._asked_replay = False  # the current connection was opened with last_seq
        self._replaying = False  # waiting for `resumed` / `resync_required`
        self._synced = False  # state/version known to match the hub at some version
        self._newest_version = 0
        self._fetch: asyncio.Task[Any] | None = None
        self._last_error: Frame | None = None
        self._pending: dict[str, tuple[asyncio.Future[Frame], Callable[[Frame], bool] | None]] = {}
        self._streams: weakref.WeakSet[EventStream] = weakref.WeakSet()
        self._tasks: set[asyncio.Task[Any]] = set()

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Connect (retrying with backoff) and return once the welcome and the initial
        state are in. Raises :class:`ClientClosed` if the hub refuses for good."""
        if self._runner is None:
            if self._finished:
                raise ClientClosed(self.closed_code, self.closed_reason, self._last_error)
            self._ready = asyncio.get_running_loop().create_future()
            self._runner = asyncio.create_task(self._run(), name="companion-client")
        assert self._ready is not None
        await asyncio.shield(self._ready)

    async def close(self) -> None:
        """Close with 1000 and stop: ``events()`` iterators end, requests fail."""
        self._closing = True
        ws = self._ws
        if ws is not None:
            with contextlib.suppress(Exception):
                await ws.close()  # the read loop sees it and stops
        runner, self._runner = self._runner, None
        if runner is not None and runner is not asyncio.current_task():
            runner.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await runner
        self._finish(1000, "closed by the client")

    async def __aenter__(self) -> CompanionClient:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # ---------------------------------------------------------------- the public calls

    def events(self) -> AsyncIterator[Frame]:
        """Every frame the hub sends from now on, in order, across reconnects: each
        broadcast (seq'd) frame once, in seq order; the unsequenced ``session_joined``
        (each connect), ``resumed`` and ``resync_required``; and replies to requests.
        Ends when the client stops for good (see ``closed_code``). Each iterator has a
        bounded queue; one that falls too far behind raises :class:`EventStreamOverflow`."""
        stream = EventStream(self, EVENT_QUEUE_LIMIT)
        if self._finished:
            stream._end()
        else:
            self._streams.add(stream)
        return stream

    async def wait_for(self, predicate: Callable[[Frame], bool], timeout: float = 10.0) -> Frame:
        """The next frame (from now on) that matches."""
        stream = EventStream(self, EVENT_QUEUE_LIMIT)
        self._streams.add(stream)
        try:
            async with asyncio.timeout(timeout):
                async for frame in stream:
                    if predicate(frame):
                        return frame
        finally:
            await stream.aclose()
        raise ClientClosed(self.closed_code, self.closed_reason, self._last_error)

    async def send(self, frame: Frame) -> None:
        """Send a frame as is, without waiting for an answer (the terminal client)."""
        ws = await self._wait_online()
        try:
            await ws.send(_encode(frame).decode())
        except ConnectionClosed as exc:
            raise ConnectionError("the connection dropped; retry") from exc

    async def request(self, frame: Frame, timeout: float = 10.0) -> Frame:
        """Send ``frame`` with a fresh ``requestId``; the first frame carrying it back.
        Raises :class:`ClientError` for an ``error`` frame, ``ConnectionError`` if the
        connection dropped before the reply (nothing is resent: retry if it is safe),
        ``TimeoutError``."""
        return await self._request(frame, timeout, None)

    async def update_state(
        self, patch: dict[str, Any], *, expected_version: int | None = None
    ) -> Frame:
        """Merge-patch the session state; the ``session_state_updated`` echo."""
        frame: Frame = {"type": "update_session_state", "patch": patch}
        if expected_version is not None:
            frame["expected_version"] = expected_version
        return await self.request(frame)

    async def contextual_update(self, text: str, data: Any = None) -> Frame:
        """Broadcast a ``contextual_update``; the echo (it carries the ``seq``)."""
        return await self.request({"type": "contextual_update", "text": text, "data": data})

    async def call_tool(
        self, tool_name: str, tool_call_id: str, parameters: dict[str, Any]
    ) -> Frame:
        """Run a registered tool; the ``client_tool_result`` frame."""
        call = {"tool_name": tool_name, "tool_call_id": tool_call_id, "parameters": parameters}
        return await self._request(
            {"type": "client_tool_call", "client_tool_call": call},
            10.0,
            lambda f: f.get("type") == "client_tool_result",
        )

    # ---------------------------------------------------------------- requests

    async def _wait_online(self) -> ClientConnection:
        if self._runner is None and not self._finished:
            raise RuntimeError("call start() first")
        while True:
            if self._finished:
                raise ClientClosed(self.closed_code, self.closed_reason, self._last_error)
            ws = self._ws
            if self.connected and ws is not None:
                return ws
            await self._online.wait()

    async def _request(
        self, frame: Frame, timeout: float, want: Callable[[Frame], bool] | None
    ) -> Frame:
        async with asyncio.timeout(timeout):
            ws = await self._wait_online()
            rid = uuid.uuid4().hex
            future: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
            self._pending[rid] = (future, want)
            try:
                try:
                    await ws.send(_encode({**frame, "requestId": rid}).decode())
                except ConnectionClosed as exc:
                    raise ConnectionError("the connection dropped; retry") from exc
                return await future
            finally:
                self._pending.pop(rid, None)
                if future.done() and not future.cancelled():
                    future.exception()  # mark it retrieved whichever way we left

    def _answer(self, frame: Frame) -> None:
        rid = frame.get("requestId")
        if not isinstance(rid, str):
            return
        entry = self._pending.get(rid)
        if entry is None:
            return
        future, want = entry
        if future.done():
            return
        if frame.get("type") == "error":
            future.set_exception(ClientError(frame))
        elif want is None or want(frame):
            future.set_result(frame)

    def _fail_pending(self, exc: BaseException) -> None:
        for future, _ in list(self._pending.values()):
            if not future.done():
                future.set_exception(exc)

    # ---------------------------------------------------------------- the connection loop

    async def _run(self) -> None:
        failures = 0
        try:
            while not self._closing:
                code, reason = await self._connect_and_read()
                welcomed = self._welcomed_now
                self._went_offline(code)
                if self._closing:
                    break
                if not should_reconnect(code):
                    self._finish(code, reason)
                    return
                failures = 0 if welcomed else failures + 1
                if self._max_attempts is not None and failures >= self._max_attempts:
                    self._finish(code, f"gave up after {failures} attempts: {reason}")
                    return
                ceiling = min(self._backoff_max, self._backoff_initial * 2**failures)
                delay = random.uniform(0, ceiling)
                log.info("connection closed (%s %s); reconnecting in %.2fs", code, reason, delay)
                await asyncio.sleep(delay)
        except Exception as exc:
            log.exception("the companion client failed")
            self._finish(None, f"client failure: {exc!r}")
            return
        self._finish(1000, "closed by the client")

    async def _connect_and_read(self) -> tuple[int | None, str]:
        """One connection, from the handshake to its close: (close code, reason).
        A failed connect is reported as 1006 (retryable) or 4000+HTTP status."""
        self._welcomed_now = False
        self._last_error = None
        try:
            token = await self._current_token()
        except Exception as exc:
            log.warning("the token provider failed: %r", exc)
            return 1006, f"the token provider failed: {exc!r}"
        try:
            url = self._url()
            ws = await connect(
                url,
                additional_headers={"Authorization": f"Bearer {token}"},
                open_timeout=self._open_timeout,
                max_size=_MAX_FRAME,
            )
        except InvalidStatus as exc:
            status = exc.response.status_code
            if 400 <= status < 500 and status not in (408, 429):
                return 4000 + status, f"HTTP {status} on connect"
            return 1006, f"HTTP {status} on connect"
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            return 1006, f"connect failed: {exc}"
        self._ws = ws
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
                    self._on_frame(frame)
                except Exception:
                    log.exception("handling a %r frame failed", frame.get("type"))
        except ConnectionClosed as exc:
            if exc.rcvd is not None:
                return exc.rcvd.code, exc.rcvd.reason
            if exc.sent is not None and exc.sent.code != 1000:
                return exc.sent.code, exc.sent.reason
            return 1006, "the connection dropped"
        finally:
            self._ws = None
            with contextlib.suppress(Exception):
                await ws.close()

    def _url(self) -> str:
        query: dict[str, str] = {"client": self._kind}
        if self.session_id is not None:
            query["session_id"] = self.session_id
        self._asked_replay = self._welcomed and self.epoch is not None
        if self._asked_replay:
            query["last_seq"] = str(self.seq)
            query["epoch"] = str(self.epoch)
        return f"{self._base}?{urlencode(query)}"

    async def _current_token(self) -> str:
        source = self._token
        value = source if isinstance(source, str) else source()
        if inspect.isawaitable(value):
            value = await value
        token = str(value)
        if self.reconnect_token is not None and _is_join_token(token):
            return self.reconnect_token  # the join token was good for one connect only
        return token

    def _went_offline(self, code: int | None) -> None:
        self.last_close_code = code
        if self.connected:
            log.debug("offline (%s)", code)
        self.connected = False
        self._online.clear()
        self._replaying = False
        self._fail_pending(ConnectionError("the connection dropped before the reply; retry"))

    def _finish(self, code: int | None, reason: str) -> None:
        if self._finished:
            return
        self._finished = True
        self._closing = True
        self.connected = False
        self.closed_code = code
        self.closed_reason = reason
        closed = ClientClosed(code, reason, self._last_error)
        self._fail_pending(closed)
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(closed)
            self._ready.exception()  # retrieved: start() may not be waiting
        for task in list(self._tasks):
            task.cancel()
        for stream in list(self._streams):
            stream._end()
        self._online.set()  # wake request() waiters so they see the close

    # ---------------------------------------------------------------- frames

    def _on_frame(self, frame: Frame) -> None:
        kind = frame.get("type")
        seq = frame.get("seq")
        if kind not in UNSEQUENCED and isinstance(seq, int):
            if seq <= self.seq:
                return  # a duplicate (a replay overlapping what was seen)
            if seq != self.seq + 1:
                self._ask_replay()  # a gap: drop it, the replay brings it in order
                return
            self.seq = seq
            if kind == "session_state_updated":
                self._apply_patch(frame)
        else:
            match kind:
                case "session_joined":
                    self._on_welcome(frame)
                case "session_state":
                    self._apply_snapshot(frame.get("state"), frame.get("version"))
                case "resync_required":
                    self._replaying = False
                    self.seq = int(frame.get("seq", self.seq))
                    self.epoch = frame.get("epoch") or self.epoch
                    self._apply_snapshot(frame.get("state"), frame.get("version"), force=True)
                case "resumed":
                    self._replaying = False
                case "error":
                    if frame.get("requestId") is None:
                        self._last_error = frame
        self._answer(frame)
        for stream in list(self._streams):
            stream._push(frame)

    def _on_welcome(self, frame: Frame) -> None:
        sid = frame.get("session_id")
        fresh = not self._asked_replay or bool(frame.get("created")) or sid != self.session_id
        if fresh and self._welcomed:
            # A new session (the old one ended or expired): start over.
            self.state, self.version, self._synced, self._newest_version = {}, 0, False, 0
        self.session_id = sid if isinstance(sid, str) else self.session_id
        self.connection_id = frame.get("connection_id")
        self.reconnect_token = frame.get("reconnect_token") or self.reconnect_token
        self.welcome = frame
        if fresh:
            self.seq = int(frame.get("seq", 0))
            self.epoch = frame.get("epoch")
        self._replaying = not fresh
        if self._welcomed:
            self.reconnects += 1
        self._welcomed = self._welcomed_now = True
        self.connected = True
        self._online.set()
        if fresh or not self._synced:
            self._fetch_state()
        elif self._ready is not None and not self._ready.done():
            self._ready.set_result(None)

    def _ask_replay(self) -> None:
        ws = self._ws
        if self._replaying or ws is None:
            return
        self._replaying = True
        log.warning("gap after seq %d: asking for a replay", self.seq)
        frame = {"type": "resume", "last_seq": self.seq, "epoch": self.epoch}
        self._spawn(ws.send(_encode(frame).decode()))

    def _apply_patch(self, frame: Frame) -> None:
        version = frame.get("version")
        if not isinstance(version, int):
            return
        self._newest_version = max(self._newest_version, version)
        if version == self.version + 1:
            self.state = merge_patch(self.state, frame.get("patch"))
            self.version = version
        elif version > self.version + 1:
            self._fetch_state()  # skipped ahead: re-read the whole state

    def _apply_snapshot(self, state: Any, version: Any, *, force: bool = False) -> None:
        if not isinstance(state, dict) or not isinstance(version, int):
            return
        if force or version >= self.version:
            self.state, self.version = state, version
        # Otherwise the patches since that snapshot are applied already: as new or newer.
        self._newest_version = max(self._newest_version, version)
        self._synced = True
        if self._ready is not None and not self._ready.done() and self.connected:
            self._ready.set_result(None)

    def _fetch_state(self) -> None:
        if self._fetch is None:
            self._fetch = self._spawn(self._fetch_loop())

    async def _fetch_loop(self) -> None:
        """``get_session_state`` until the mirror is at least as new as any version
        seen (the read loop applies the reply itself, in socket order)."""
        try:
            while True:
                await self.request({"type": "get_session_state"})
                if self._newest_version <= self.version:
                    return
        except (ConnectionError, TimeoutError, ClientError) as exc:
            log.debug("fetching the state failed (%s); the next connect retries", exc)
        finally:
            self._fetch = None

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._reap)
        return task

    def _reap(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("background send failed: %s", task.exception())


def _ws_base(url: str) -> str:
    """``ws://host:port`` (or http/https, or a URL ending in /ws) -> ``ws://host:port/ws``."""
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss"):
        raise ValueError(f"not a ws:// or http:// URL: {url!r}")
    path = parts.path.rstrip("/")
    if not path.endswith("/ws"):
        path += "/ws"
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def _is_join_token(token: str) -> bool:
    """A one-time join token: a join code (not a JWT: no dots), or a JWT with
    ``typ: join``, read without verifying it (the hub verifies)."""
    parts = token.split(".")
    if len(parts) != 3:
        return True
    try:
        claims = _decode(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, msgspec.DecodeError):
        return False
    return isinstance(claims, dict) and claims.get("typ") == "join"
