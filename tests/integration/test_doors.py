"""The doors before the token (docs/protocol.md section 4, v1.2; audit N2), on the wire of
``companion-ws serve``: a request head over ``COMPANION_MAX_HEADER_BYTES`` is answered 431
and the connection ends, without the hub reading it further; a connection without a
whole request head within ``COMPANION_HEADER_TIMEOUT`` seconds is closed; both for plain
requests, keep-alive ones and WebSocket upgrades, while normal traffic goes on.

One hub for the module, on SQLite: nothing here touches storage. Its header timeout is
1 s so that the waits below are short; every wait for a close is 15 s, far past it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.hub import HubProcess, free_port, token
from tests.support.served import served
from tests.support.ws import connect

LIMIT = 16 * 1024  # the default COMPANION_MAX_HEADER_BYTES
TIMEOUT = 1.0  # COMPANION_HEADER_TIMEOUT in this module's hub
WAIT = 15.0  # how long a test waits for the hub to close a connection


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    tmp = tmp_path_factory.mktemp("doors")
    process = HubProcess(
        database_url=f"sqlite+aiosqlite:///{tmp / 'hub.db'}",
        env={"COMPANION_HEADER_TIMEOUT": str(TIMEOUT)},
        log_path=tmp / "hub.log",
    ).start()
    try:
        yield process
    finally:
        process.stop()


def head(size: int, path: str = "/healthz", extra: bytes = b"") -> bytes:
    """A GET whose head (request line, headers, blank line) is exactly ``size`` bytes."""
    start = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n".encode() + extra + b"X-Pad: "
    pad = size - len(start) - 4
    assert pad >= 0
    return start + b"a" * pad + b"\r\n\r\n"


def opened(hub: HubProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", hub.port), timeout=WAIT)


def until_closed(sock: socket.socket, timeout: float = WAIT) -> bytes:
    """Everything the hub sends until it ends the connection (a close or a reset);
    fails if the connection is still open after ``timeout`` seconds."""
    received: list[bytes] = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except TimeoutError:
            break
        except ConnectionResetError:
            return b"".join(received)
        if not data:
            return b"".join(received)
        received.append(data)
    raise AssertionError(
        f"the hub kept the connection open for {timeout} s (it sent {b''.join(received)[:80]!r})"
    )


def statuses(sock: socket.socket, count: int = 1) -> list[int]:
    """The statuses of the next ``count`` responses on ``sock``, each read whole (by its
    Content-Length); the connection stays open."""
    found: list[int] = []
    buffer = b""
    while len(found) < count:
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            data = sock.recv(65536)
            assert data, "the hub closed the connection"
            buffer += data
            continue
        lines = buffer[:end].decode("latin-1").split("\r\n")
        length = next(
            int(line.split(":", 1)[1])
            for line in lines
            if line.lower().startswith("content-length:")
        )
        while len(buffer) < end + 4 + length:
            data = sock.recv(65536)
            assert data, "the hub closed the connection"
            buffer += data
        found.append(int(lines[0].split()[1]))
        buffer = buffer[end + 4 + length :]
    return found


# -- size -----------------------------------------------------------------------------


def test_a_head_one_byte_over_the_limit_is_answered_431_and_the_connection_ends(
    hub: HubProcess,
) -> None:
    with opened(hub) as sock:
        sock.sendall(head(LIMIT + 1))
        reply = until_closed(sock)
    assert reply.startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n"), reply[:80]
    assert b"\r\nconnection: close\r\n" in reply


def test_a_head_of_the_limit_is_served(hub: HubProcess) -> None:
    with opened(hub) as sock:
        sock.sendall(head(LIMIT))
        assert statuses(sock) == [200]


def test_a_20_mib_head_is_cut_off_long_before_it_is_sent(hub: HubProcess) -> None:
    total = 20 * 1024 * 1024
    sent = 0
    with socket.socket() as sock:
        # A small send buffer: what the client has "sent" is close to what the hub took.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        sock.settimeout(WAIT)
        sock.connect(("127.0.0.1", hub.port))
        chunk = b"GET /healthz HTTP/1.1\r\nX-Pad: " + b"a" * (64 * 1024)
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            while sent < total:
                sock.sendall(chunk)
                sent += len(chunk)
                chunk = b"a" * (64 * 1024)
    # The hub refused it after the first 16 KiB; the rest met a closed connection.
    assert sent < total // 4, f"the hub took {sent / 2**20:.1f} MiB of one request head"


def test_a_second_request_with_an_oversized_head_on_a_kept_alive_connection_is_refused(
    hub: HubProcess,
) -> None:
    with opened(hub) as sock:
        sock.sendall(head(200))
        assert statuses(sock) == [200]
        sock.sendall(head(LIMIT + 1))
        reply = until_closed(sock)
    assert reply.startswith(b"HTTP/1.1 431 "), reply[:80]


def test_a_websocket_upgrade_with_an_oversized_head_is_refused(hub: HubProcess) -> None:
    upgrade = (
        b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
    )
    with opened(hub) as sock:
        sock.sendall(head(LIMIT + 1, path="/ws", extra=upgrade))
        reply = until_closed(sock)
    assert reply.startswith(b"HTTP/1.1 431 "), reply[:80]


def test_pipelined_requests_are_all_answered(hub: HubProcess) -> None:
    with opened(hub) as sock:
        sock.sendall(head(300) + head(400) + head(500))
        assert statuses(sock, 3) == [200, 200, 200]


# -- time -----------------------------------------------------------------------------


def test_a_silent_connection_is_closed(hub: HubProcess) -> None:
    with opened(hub) as sock:
        assert until_closed(sock) == b""


def test_a_head_sent_a_byte_at_a_time_is_closed_after_the_timeout(hub: HubProcess) -> None:
    """Bytes keep coming, well within uvicorn's keep-alive timeout each, but the head is
    not complete in time: the deadline is for the whole head."""
    partial = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 1000
    deadline = time.monotonic() + WAIT
    with opened(hub) as sock:
        sock.settimeout(0.2)
        for byte in partial:
            assert time.monotonic() < deadline, "the hub kept a slow head for 15 s"
            try:
                sock.sendall(bytes([byte]))
                if sock.recv(1) == b"":
                    return  # closed
            except TimeoutError:
                continue  # still open: the next byte
            except (BrokenPipeError, ConnectionResetError):
                return
    raise AssertionError("the hub took 1000 bytes of a head, slowly, without closing")


def test_a_half_sent_websocket_upgrade_is_closed(hub: HubProcess) -> None:
    with opened(hub) as sock:
        sock.sendall(
            b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        )
        assert until_closed(sock) == b""


def test_a_kept_alive_connection_must_send_its_next_head_in_time(hub: HubProcess) -> None:
    """After an answer the deadline starts again: half of a second head is closed (the
    bytes it sends stop uvicorn's keep-alive timer, never this one)."""
    with opened(hub) as sock:
        sock.sendall(head(200))
        assert statuses(sock) == [200]
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        assert until_closed(sock) == b""


# -- what still works -------------------------------------------------------------------


async def test_a_websocket_outlives_the_header_timeout(hub: HubProcess) -> None:
    ws = await connect(hub.ws_url, token("alice"))
    try:
        await asyncio.sleep(3 * TIMEOUT)  # the deadline ended with the upgrade's head
        reply = await ws.request({"type": "get_presence"})
        assert reply["type"] == "presence", reply
    finally:
        await ws.close()


def test_requests_on_a_kept_alive_connection_are_served(hub: HubProcess) -> None:
    with httpx.Client(base_url=hub.base_url) as client:
        for _ in range(3):
            assert client.get("/healthz").status_code == 200


async def test_a_long_answer_outlives_the_header_timeout(hub: HubProcess) -> None:
    """An AG-UI stream is one response that lasts: the deadline ended with its head."""
    agent = await connect(hub.ws_url, token("dora"), client="agent")
    sid = agent.welcome["session_id"]
    auth = {"Authorization": f"Bearer {token('dora')}"}
    try:
        async with (
            httpx.AsyncClient(base_url=hub.base_url, timeout=httpx.Timeout(10, read=None)) as http,
            http.stream("GET", f"/sessions/{sid}/ag-ui", headers=auth) as stream,
        ):
            assert stream.status_code == 200
            lines = stream.aiter_lines()
            async with asyncio.timeout(WAIT):
                while "RUN_STARTED" not in await anext(lines):
                    pass
            await asyncio.sleep(3 * TIMEOUT)
            await agent.send({"type": "contextual_update", "text": "still here", "data": {}})
            async with asyncio.timeout(WAIT):
                while "still here" not in await anext(lines):
                    pass
    finally:
        await agent.close()


def test_an_upgrade_with_more_than_the_limit_in_its_read_is_handed_over_once(
    hub: HubProcess,
) -> None:
    """The head of an upgrade, then (in the same write) more than the limit of bytes:
    the socket goes to the WebSocket protocol once, and nothing after the head is fed to
    the HTTP parser (pins uvicorn's ``handle_websocket_upgrade``, which HttpProtocol
    hooks to stop feeding)."""
    upgrade = (
        f"GET /ws?token={token('erin')} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    ).encode()
    with opened(hub) as sock:
        sock.sendall(upgrade + b"\x00" * (2 * LIMIT))
        received = b""
        while b"\r\n\r\n" not in received:
            data = sock.recv(65536)
            assert data, "the hub closed the connection"
            received += data
        assert received.startswith(b"HTTP/1.1 101 "), received[:80]
        with contextlib.suppress(TimeoutError, ConnectionError):
            sock.settimeout(2)
            while data := sock.recv(65536):
                received += data
    assert received.count(b"HTTP/1.1 ") == 1, received[:400]


async def test_an_oversized_head_during_an_answer_ends_the_connection_without_a_431() -> None:
    """Request 1 is still being answered when request 2's head grows past the limit: a
    431 written then would land inside answer 1, so the connection is only closed.
    (In this process: uvicorn with the hub's protocol class and an app that answers
    request 1 only when the test says so.)"""
    from companion_ws.endpoints.http_protocol import http_protocol

    release = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"late"})

    async with served(app, http=http_protocol(LIMIT, 30.0)) as port:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(head(200) + head(LIMIT + 1))
            await writer.drain()
            async with asyncio.timeout(WAIT):
                received = await reader.read()  # to the end of the connection
            assert received == b""
            writer.close()
        finally:
            release.set()  # answer 1 goes out, so the server can stop


@pytest.mark.parametrize(
    ("name", "value"), [("COMPANION_MAX_HEADER_BYTES", "0"), ("COMPANION_HEADER_TIMEOUT", "0")]
)
def test_a_door_left_open_by_its_setting_stops_the_start(
    name: str, value: str, tmp_path: Path
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "companion_ws", "serve", "--port", str(free_port())],
        env={
            **os.environ,
            "COMPANION_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}",
            name: value,
        },
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert name in result.stderr, result.stderr
