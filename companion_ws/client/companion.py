"""``CompanionClient``: an asyncio client that keeps one session live across drops.

It connects with a token and feeds every frame to a :class:`SessionMirror`, which keeps
the session's position (``seq``, ``epoch``) and state and says what to do: deliver the
frame, ask a replay for a gap, fetch the state. On a close that
:func:`~companion_ws.protocol.closecodes.should_reconnect` calls retryable (1006, 1011,
1012, 4409, 4429, a network error...) it reconnects with exponential backoff and full
jitter, passing ``last_seq``/``epoch`` so the hub replays what was missed (docs/protocol.md
section 4); any other close (1000, 4400, 4401, 4403, 4410...) stops it for good.
Broadcast frames reach the caller exactly once and in ``seq`` order.
    async with CompanionClient("ws://127.0.0.1:8000", token=tok) as client:
        await client.update_state({"ui": {"step": "quotes"}})
        async for frame in client.events():
            ...
The mirror and the voice floor (voice.py) are up to date before a frame reaches
``events()`` and before a request that it answers returns.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from companion_ws.client.actions import Deliver, FetchState, Ready, RequestReplay
from companion_ws.client.address import (
    TokenSource,
    connect_url,
    current_token,
    renewal_token,
    ws_base,
)
from companion_ws.client.background import Background
from companion_ws.client.errors import ClientClosed, ClientError
from companion_ws.client.mirror import Phase, SessionMirror
from companion_ws.client.pending import PendingRequests
from companion_ws.client.retry import Retry, Stop
from companion_ws.client.stream import EventStreams
from companion_ws.client.transport import Closed, dial, read_until_closed
from companion_ws.client.voice import VoiceFloorRequests

__all__ = ["CompanionClient"]

log = logging.getLogger("companion_ws.client")

Frame = dict[str, Any]
_encode = msgspec.json.Encoder().encode


class CompanionClient(VoiceFloorRequests):
    """One session, kept live: the socket, the backoff and the requests around a
    :class:`SessionMirror` (``client.mirror``)."""

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
        first_connect_timeout: float | None = None,
    ) -> None:
        self._base = ws_base(url)
        self._token = token
        self._kind = client
        self._backoff_initial = backoff_initial
        self._backoff_max = backoff_max
        self._max_attempts = max_attempts
        self._open_timeout = open_timeout
        # Give up when nothing has ever answered within this long (a wrong URL or port
        # is a mistake to report, not an outage to ride out); None: retry for ever.
        self._first_connect_timeout = first_connect_timeout

        self.mirror = SessionMirror(session_id)
        self.reconnect_token: str | None = None
        self.closed_code: int | None = None
        self.closed_reason = ""
        self.last_close_code: int | None = None  # of the most recent dropped connection

        self._ws: ClientConnection | None = None
        self._runner: asyncio.Task[None] | None = None
        self._ready: asyncio.Future[None] | None = None
        self._online = asyncio.Event()
        self._closing = False  # close() was called: no more connects
        self._last_error: Frame | None = None
        self._pending = PendingRequests()
        self._streams = EventStreams()
        self._background = Background()

    # ---------------------------------------------------------------- the mirror, read-only

    @property
    def session_id(self) -> str | None:
        return self.mirror.session_id

    @property
    def connection_id(self) -> str | None:
        return self.mirror.connection_id

    @property
    def seq(self) -> int:
        return self.mirror.seq

    @property
    def epoch(self) -> str | None:
        return self.mirror.epoch

    @property
    def state(self) -> dict[str, Any]:
        return self.mirror.state

    @property
    def version(self) -> int:
        return self.mirror.version

    @property
    def welcome(self) -> Frame:
        return self.mirror.welcome

    @property
    def reconnects(self) -> int:
        return self.mirror.reconnects

    @property
    def connected(self) -> bool:
        """Welcomed on a connection that is still open."""
        return self.mirror.phase in (Phase.LIVE, Phase.REPLAYING)

    @property
    def _finished(self) -> bool:
        return self.mirror.phase is Phase.CLOSED

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

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # ---------------------------------------------------------------- the public calls

    def events(self) -> AsyncIterator[Frame]:
        """Every frame the hub sends from now on, in order, across reconnects: each
        broadcast (seq'd) frame once, in seq order; the unsequenced ``session_joined``
        (each connect), ``resumed`` and ``resync_required``; and replies to requests.
        Ends when the client stops for good (see ``closed_code``). Each iterator has a
        bounded queue; one that falls too far behind raises :class:`EventStreamOverflow`."""
        return self._streams.open()

    async def wait_for(self, predicate: Callable[[Frame], bool], timeout: float = 10.0) -> Frame:
        """The next frame (from now on) that matches."""
        found = await self._streams.wait_for(predicate, timeout)
        if found is None:
            raise ClientClosed(self.closed_code, self.closed_reason, self._last_error)
        return found

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
        """Merge-patch the state; the echo (offline: :meth:`SessionMirror.decided_on`)."""
        frame: Frame = {"type": "update_session_state", "patch": patch}
        if (version := self.mirror.decided_on(expected_version)) is not None:
            frame["expected_version"] = version
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
            rid, future = self._pending.add(want)
            try:
                try:
                    await ws.send(_encode({**frame, "requestId": rid}).decode())
                except ConnectionClosed as exc:
                    raise ConnectionError("the connection dropped; retry") from exc
                return await future
            finally:
                self._pending.discard(rid)

    # ---------------------------------------------------------------- the connection loop

    async def _run(self) -> None:
        retry = Retry(
            started=time.monotonic(),
            where=self._base,
            backoff_initial=self._backoff_initial,
            backoff_max=self._backoff_max,
            max_attempts=self._max_attempts,
            first_connect_timeout=self._first_connect_timeout,
        )
        try:
            while not self._closing:
                code, reason = await self._connect_and_read()
                welcomed = self.connected
                self._went_offline(code)
                if self._closing:
                    break
                decision = retry.after(code, reason, welcomed=welcomed, now=time.monotonic())
                if isinstance(decision, Stop):
                    self._finish(code, decision.reason)
                    return
                log.info("connection closed (%s %s); reconnecting in %.2fs", code, reason, decision)
                await asyncio.sleep(decision)
        except Exception as exc:
            log.exception("the companion client failed")
            self._finish(None, f"client failure: {exc!r}")
            return
        self._finish(1000, "closed by the client")

    async def _connect_and_read(self) -> Closed:
        """One connection, from the handshake to its close: (close code, reason)."""
        self._last_error = None
        try:
            token = await current_token(self._token, self.reconnect_token)
        except Exception as exc:
            log.warning("the token provider failed: %r", exc)
            return 1006, f"the token provider failed: {exc!r}"
        url = connect_url(self._base, self._kind, self.session_id, self.mirror.connecting())
        ws = await dial(url, token, self._open_timeout)
        if isinstance(ws, tuple):
            return ws
        self._ws = ws
        try:
            return await read_until_closed(ws, self._on_frame)
        finally:
            self._ws = None
            with contextlib.suppress(Exception):
                await ws.close()

    def _went_offline(self, code: int | None) -> None:
        self.last_close_code = code
        if self.connected:
            log.debug("offline (%s)", code)
        self.mirror.dropped()
        self._online.clear()
        self._pending.fail(ConnectionError("the connection dropped before the reply; retry"))

    def _finish(self, code: int | None, reason: str) -> None:
        if self._finished:
            return
        self.mirror.close()
        self._closing = True
        self.closed_code = code
        self.closed_reason = reason
        closed = ClientClosed(code, reason, self._last_error)
        self._pending.fail(closed)
        if self._ready is not None and not self._ready.done():
            self._ready.set_exception(closed)
            self._ready.exception()  # retrieved: start() may not be waiting
        self._background.cancel()
        self._streams.end()
        self._online.set()  # wake request() waiters so they see the close

    # ---------------------------------------------------------------- frames

    def _on_frame(self, frame: Frame) -> None:
        """Carry out what the mirror makes of ``frame``: to the caller, then the rest."""
        delivered = False
        for action in self.mirror.receive(frame):
            match action:
                case Deliver():
                    delivered = True
                    self._note(frame)
                case RequestReplay():
                    log.warning("gap after seq %d: asking for a replay", action.last_seq)
                    self._send_soon(action.frame())
                case FetchState():
                    self._background.spawn(self._fetch_state())
                case Ready():
                    if self._ready is not None and not self._ready.done():
                        self._ready.set_result(None)
        if not delivered:
            return  # a duplicate, or a broadcast past a gap: the replay brings it
        self._pending.answer(frame)
        self._streams.push(frame)

    def _note(self, frame: Frame) -> None:
        """What the connection (not the session) takes from a delivered frame."""
        self._note_floor(frame)
        match frame.get("type"):
            case "session_joined":
                self.reconnect_token = frame.get("reconnect_token") or self.reconnect_token
                self._online.set()
            case "error" if frame.get("requestId") is None:
                self._last_error = frame
            case "refresh_required":
                self._background.spawn(self._refresh())

    async def _refresh(self) -> None:
        """Renew the open connection's credential (docs/protocol.md section 12), with what
        :func:`renewal_token` names."""
        try:
            token = await renewal_token(self._token, self.reconnect_token)
            if token is None:
                log.warning(
                    "the token expires soon and there is no way to renew it: "
                    "pass a token callable to keep the connection past it"
                )
                return
            await self.request({"type": "refresh", "token": token})
        except (ConnectionError, TimeoutError, ClientError) as exc:
            log.warning("renewing the token failed: %s", exc)

    async def _fetch_state(self) -> None:
        """``get_session_state``; the read loop applies the reply, in socket order, and
        the mirror asks again if it is still behind."""
        try:
            await self.request(FetchState().frame())
        except ConnectionError:
            pass  # the mirror forgot the fetch with the connection; the next welcome asks
        except (TimeoutError, ClientError) as exc:
            log.debug("fetching the state failed (%s)", exc)
            self.mirror.fetch_failed()

    def _send_soon(self, frame: Frame) -> None:
        ws = self._ws
        if ws is not None:
            self._background.spawn(ws.send(_encode(frame).decode()))
