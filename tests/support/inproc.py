"""The hub in the test's own process: the real app (node, store, memory broker) driven
over ASGI, with no port and no subprocess.

For rule tests (join rules, roles, resume, hold and release, tool runs, compare-and-set,
presence): they need the hub's services and its frames, not a wire, and run in
milliseconds here. What only a real process shows (the wire, a crash, several
processes, the page) stays in the subprocess tests of ``tests/support/hub.py``.

``InProcessHub.connect`` answers the same ``WS`` surface as ``tests/support/ws.py``, so
a test reads the same against either hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx

from companion_ws.app import create_app
from companion_ws.settings import Settings
from tests.support.frames import FrameSocket
from tests.support.hub import TEST_SETTINGS

BASE_URL = "http://hub.test"
ASGIApp = Callable[..., Any]

# The hub's own tasks and the sockets' run in whatever task awaits them, so the harness
# uses plain asyncio queues: a pytest fixture may start it in one task and end it in
# another (anyio's task groups, as httpx-ws and asgi-lifespan use, may not).


class InProcessWS(FrameSocket):
    """One socket to the in-process hub over ASGI: JSON in, JSON out, with timeouts."""

    def __init__(self, app: ASGIApp, scope: dict[str, Any]) -> None:
        self._to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._task = asyncio.ensure_future(app(scope, self._to_app.get, self._from_app.put))
        self.welcome: dict[str, Any] = {}
        self.accepted: dict[str, Any] | None = None
        self.close_code: tuple[int | None, str] | None = None

    async def open(self, timeout: float = 5.0) -> InProcessWS:
        await self._to_app.put({"type": "websocket.connect"})
        message = await self._next(timeout)
        if message["type"] == "websocket.accept":
            self.accepted = message
        else:
            self._closed_by(message)
        return self

    async def _next(self, timeout: float) -> dict[str, Any]:
        get = asyncio.ensure_future(self._from_app.get())
        done, _ = await asyncio.wait(
            {get, self._task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if get in done:
            return get.result()
        get.cancel()
        if self._task in done:
            self._task.result()  # the app failed: raise its exception here
            return {"type": "websocket.close", "code": 1006, "reason": "app returned"}
        raise TimeoutError(f"no frame within {timeout}s")

    def _closed_by(self, message: dict[str, Any]) -> None:
        if message["type"] == "websocket.close":
            self.close_code = (message.get("code", 1000), message.get("reason") or "")
        else:  # the denial response (websocket.http.response.*): a handshake refused
            self.close_code = (None, f"http {message.get('status')}")

    async def send(self, frame: dict[str, Any] | str | bytes) -> None:
        """A dict as JSON text, a str as text, bytes as a binary frame."""
        if isinstance(frame, bytes):
            await self._to_app.put({"type": "websocket.receive", "bytes": frame})
            return
        text = frame if isinstance(frame, str) else json.dumps(frame)
        await self._to_app.put({"type": "websocket.receive", "text": text})

    async def recv(self, timeout: float = 5.0) -> dict[str, Any]:
        if self.close_code is not None:
            raise ConnectionError(f"closed {self.close_code}")
        message = await self._next(timeout)
        if message["type"] != "websocket.send":
            self._closed_by(message)
            raise ConnectionError(f"closed {self.close_code}")
        frame: dict[str, Any] = json.loads(message["text"])
        return frame

    async def closed(self, timeout: float = 5.0) -> tuple[int | None, str]:
        """Wait for the hub to close; (code, reason)."""
        async with asyncio.timeout(timeout):
            while self.close_code is None:
                with contextlib.suppress(ConnectionError):
                    await self.recv(timeout)
        return self.close_code

    async def close(self, code: int = 1000) -> None:
        """The client goes away; the app's read loop sees the disconnect and cleans up."""
        if not self._task.done():
            await self._to_app.put({"type": "websocket.disconnect", "code": code})
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._task), 5)
        if not self._task.done():
            self._task.cancel()


@dataclass
class InProcessHub:
    settings: Settings
    app: ASGIApp
    http: httpx.AsyncClient
    _sockets: list[InProcessWS] = field(default_factory=list)

    async def connect(
        self,
        token: str | None,
        *,
        session_id: str | None = None,
        path_session: bool = False,
        path: str | None = None,
        expect_welcome: bool = True,
        headers: dict[str, str] | None = None,
        **params: Any,
    ) -> InProcessWS:
        """``path_session`` puts the session id in the path (``/ws/{id}``) rather than the
        query, as ``tests/support/ws.py``'s ``connect``; ``path`` names the path outright
        (with ``session_id`` then in the query), for a path and a query that disagree;
        ``headers`` go on the handshake (``Authorization: Bearer ...``, say)."""
        query: dict[str, Any] = {k: v for k, v in params.items() if v is not None}
        if token is not None:
            query["token"] = token
        if path is None and path_session and session_id is not None:
            path = f"/ws/{session_id}"
        elif session_id is not None:
            query["session_id"] = session_id
        path = path or "/ws"
        scope = {
            "type": "websocket",
            "asgi": {"version": "3.0"},
            "scheme": "ws",
            "path": path,
            "raw_path": path.encode(),
            "query_string": urlencode(query).encode(),
            "headers": [(b"host", b"hub.test")]
            + [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()],
            "client": ("127.0.0.1", 50000 + len(self._sockets)),
            "server": ("127.0.0.1", 80),
            "subprotocols": [],
        }
        ws = await InProcessWS(self.app, scope).open()
        self._sockets.append(ws)
        if expect_welcome:
            ws.welcome = await ws.recv()
            assert ws.welcome["type"] == "session_joined", ws.welcome
        return ws

    async def aclose(self) -> None:
        for ws in self._sockets:
            with contextlib.suppress(Exception):
                await ws.close()


class _AppBody(httpx.AsyncByteStream):
    """A response body as the app sends it; incomplete (the app failed or returned
    without its last chunk) raises, as a broken response on the wire would."""

    def __init__(self, task: asyncio.Future[Any], gone: asyncio.Event) -> None:
        self.chunks: asyncio.Queue[bytes | None] = asyncio.Queue()
        self.complete = False
        self._task = task
        self._gone = gone
        task.add_done_callback(lambda _: self.chunks.put_nowait(None))

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while (chunk := await self.chunks.get()) is not None:
            yield chunk
        if not self.complete:
            if self._task.done() and not self._task.cancelled():
                self._task.result()  # the app failed: raise its exception here
            raise httpx.RemoteProtocolError("the response ended before its last chunk")

    async def aclose(self) -> None:
        """The client goes away: the app's receive() answers http.disconnect."""
        self._gone.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), 5)
        except Exception:
            self._task.cancel()


class StreamingASGITransport(httpx.AsyncBaseTransport):
    """As ``httpx.ASGITransport``, but the body streams as the app sends it (which
    waits for the whole body, so never answers an endless SSE stream), and closing the
    response tells the app its client left: ``httpx.AsyncClient(transport=
    StreamingASGITransport(hub.app), base_url=BASE_URL).stream(...)``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        body = await request.aread()
        gone = asyncio.Event()
        requested = False

        async def receive() -> dict[str, Any]:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": body, "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        start: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        stream: _AppBody | None = None

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.set_result(message)
            elif message["type"] == "http.response.body" and stream is not None:
                if message.get("body"):
                    stream.chunks.put_nowait(message["body"])
                if not message.get("more_body", False):
                    stream.complete = True
                    stream.chunks.put_nowait(None)

        url = request.url
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": request.method,
            "scheme": url.scheme,
            "path": url.path,
            "raw_path": url.raw_path.split(b"?")[0],
            "query_string": url.query,
            "root_path": "",
            "headers": [(k.lower(), v) for k, v in request.headers.raw],
            "client": ("127.0.0.1", 40001),
            "server": ("127.0.0.1", 80),
        }
        task = asyncio.ensure_future(self.app(scope, receive, send))
        stream = _AppBody(task, gone)
        await asyncio.wait({start, task}, return_when=asyncio.FIRST_COMPLETED)
        if not start.done():
            task.result()
            raise httpx.RemoteProtocolError("the app returned without a response")
        head = start.result()
        return httpx.Response(head["status"], headers=head.get("headers", []), stream=stream)


def hub_settings(database_url: str, **overrides: Any) -> Settings:
    """The settings the subprocess hubs of the suite run with (tests/support/hub.py)."""
    return Settings(database_url=database_url).replace(**{**TEST_SETTINGS, **overrides})


class Lifespan:
    """The ASGI lifespan protocol, driven by hand: start-up, then shut-down."""

    def __init__(self, app: ASGIApp) -> None:
        self._to_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._from_app: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
        self._task = asyncio.ensure_future(app(scope, self._to_app.get, self._from_app.put))

    async def _step(self, message: str, timeout: float) -> None:
        await self._to_app.put({"type": f"lifespan.{message}"})
        get = asyncio.ensure_future(self._from_app.get())
        done, _ = await asyncio.wait(
            {get, self._task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
        )
        if get not in done:
            get.cancel()
            if self._task.done():
                self._task.result()
            raise TimeoutError(f"lifespan.{message} took over {timeout}s")
        answer = get.result()
        if answer["type"] != f"lifespan.{message}.complete":
            raise RuntimeError(f"lifespan.{message}: {answer}")

    async def startup(self, timeout: float = 30.0) -> None:
        await self._step("startup", timeout)

    async def shutdown(self, timeout: float = 30.0) -> None:
        await self._step("shutdown", timeout)
        await self._task


@contextlib.asynccontextmanager
async def inprocess_hub(database_url: str, **overrides: Any) -> AsyncIterator[InProcessHub]:
    settings = hub_settings(database_url, **overrides)
    app = create_app(settings)
    lifespan = Lifespan(app)
    await lifespan.startup()
    try:
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
            hub = InProcessHub(settings, app, http)
            try:
                yield hub
            finally:
                await hub.aclose()
    finally:
        await lifespan.shutdown()
