"""The hub's WebSocket protocol (``companion_ws.endpoints.socket_protocol``) on the
wire, against ``companion-ws serve``: what RFC 6455 asks of a server beyond whole text
frames, as a raw client sends it (the sans-I/O ``websockets.ClientProtocol`` over a
plain TCP stream, so every frame is exactly what the test wrote). The keepalive, whose
interval ``serve`` does not expose, is tested on uvicorn in this process with the
same protocol class and a short interval."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlencode

import pytest
import websockets
from websockets.client import ClientProtocol
from websockets.frames import Close
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

from companion_ws.endpoints.socket_protocol import SocketProtocol
from tests.support.hub import HubProcess, token
from tests.support.served import served
from tests.support.ws import connect


class RawClient:
    """A WebSocket client that writes what it is told, byte for byte."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.protocol: ClientProtocol
        self.events: list[Any] = []
        self.answering = True  # False: the client's own pongs are never sent

    @classmethod
    async def open(cls, hub: HubProcess, user: str = "alice") -> RawClient:
        client = await cls.connect(f"{hub.ws_url}/ws?{urlencode({'token': token(user)})}")
        welcome = await client.next_text()
        assert welcome["type"] == "session_joined"
        return client

    @classmethod
    async def connect(cls, url: str) -> RawClient:
        uri = parse_uri(url)
        reader, writer = await asyncio.open_connection(uri.host, uri.port)
        client = cls(reader, writer)
        client.protocol = ClientProtocol(uri, max_size=None)
        client.protocol.send_request(client.protocol.connect())
        await client.flush()
        response = await client.next_event()
        assert isinstance(response, Response) and response.status_code == 101, response
        return client

    async def flush(self) -> None:
        chunks = self.protocol.data_to_send()
        if self.answering:
            for chunk in chunks:
                if chunk:
                    self.writer.write(chunk)
        with contextlib.suppress(ConnectionError):  # the server may be gone already
            await self.writer.drain()

    async def next_event(self, timeout: float = 5.0) -> Any:
        async with asyncio.timeout(timeout):
            while not self.events:
                data = await self.reader.read(65536)
                if data:
                    self.protocol.receive_data(data)
                else:
                    self.protocol.receive_eof()
                self.events.extend(self.protocol.events_received())
                await self.flush()  # the client's own answers (a pong, a close echo)
                if not data and not self.events:
                    raise EOFError("the hub closed the connection")
        return self.events.pop(0)

    async def next_text(self, timeout: float = 5.0) -> dict[str, Any]:
        while True:
            event = await self.next_event(timeout)
            if getattr(event, "opcode", None) is not None and event.opcode.name == "TEXT":
                frame: dict[str, Any] = json.loads(bytes(event.data))
                return frame

    async def next_reply(self, timeout: float = 5.0) -> dict[str, Any]:
        """The next frame that answers a request (skipping presence and the like)."""
        while True:
            frame = await self.next_text(timeout)
            if "requestId" in frame:
                return frame

    async def close_frame(self, timeout: float = 5.0) -> Close | None:
        """Read until the hub's close frame; what it said."""
        while self.protocol.close_rcvd is None:
            await self.next_event(timeout)
        return self.protocol.close_rcvd

    def close(self) -> None:
        self.writer.close()


def _ping(request_id: str) -> bytes:
    return json.dumps({"type": "ping", "requestId": request_id}).encode()


async def test_a_message_sent_in_fragments_is_handled_as_one(shared_hub: HubProcess) -> None:
    client = await RawClient.open(shared_hub)
    whole = _ping("in-pieces")
    client.protocol.send_text(whole[:5], fin=False)
    client.protocol.send_continuation(whole[5:12], fin=False)
    await client.flush()
    await asyncio.sleep(0.05)  # the middle of a message, across reads
    client.protocol.send_continuation(whole[12:], fin=True)
    await client.flush()
    reply = await client.next_reply()
    assert (reply["type"], reply["requestId"]) == ("pong", "in-pieces")
    client.close()


async def test_many_messages_in_one_write_are_all_answered_in_order(
    shared_hub: HubProcess,
) -> None:
    """Frames that arrive in one read while the hub is still busy with the first are
    kept, in order, and reading goes on once the hub has caught up."""
    client = await RawClient.open(shared_hub)
    for i in range(40):
        client.protocol.send_text(_ping(f"p{i}"))
    await client.flush()  # one write: the hub reads them together
    answered = [(await client.next_reply())["requestId"] for _ in range(40)]
    assert answered == [f"p{i}" for i in range(40)]
    client.protocol.send_text(_ping("after"))
    await client.flush()
    assert (await client.next_reply())["requestId"] == "after"
    client.close()


async def test_a_text_frame_that_is_not_utf8_is_closed_1007(shared_hub: HubProcess) -> None:
    client = await RawClient.open(shared_hub)
    client.protocol.send_text(b"\xff\xfe not utf-8")
    await client.flush()
    close = await client.close_frame()
    assert close is not None and close.code == 1007
    client.close()


async def test_a_ping_is_answered_with_its_payload(shared_hub: HubProcess) -> None:
    ws = await connect(shared_hub.ws_url, token("alice"))
    latency = await asyncio.wait_for(await ws.conn.ping(b"are-you-there"), 5)
    assert latency >= 0
    await ws.close()


async def test_a_client_close_is_answered_and_the_connection_ends(
    shared_hub: HubProcess,
) -> None:
    client = await RawClient.open(shared_hub)
    client.protocol.send_close(4000, "bye")
    await client.flush()
    close = await client.close_frame()
    assert close is not None and (close.code, close.reason) == (4000, "bye")  # the echo
    with pytest.raises(EOFError):
        while True:
            await client.next_event()
    assert client.protocol.state is State.CLOSED
    client.close()


async def test_an_upgrade_without_a_key_is_answered_400(shared_hub: HubProcess) -> None:
    uri = parse_uri(f"{shared_hub.ws_url}/ws")
    reader, writer = await asyncio.open_connection(uri.host, uri.port)
    writer.write(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 13\r\n\r\n"
    )
    status = await asyncio.wait_for(reader.readline(), 5)
    assert status.startswith(b"HTTP/1.1 400"), status
    rest = await asyncio.wait_for(reader.read(), 5)  # then the hub closes
    assert b"Sec-WebSocket-Key" in rest
    writer.close()


async def _echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """An ASGI app that accepts and echoes text until the client goes."""
    if (await receive())["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    while (message := await receive())["type"] == "websocket.receive":
        await send({"type": "websocket.send", "text": message.get("text") or ""})


@contextlib.asynccontextmanager
async def _uvicorn(**config: Any) -> AsyncIterator[str]:
    """uvicorn in this process, on a free port, with the hub's protocol class."""
    async with served(_echo, ws=SocketProtocol, **config) as port:
        yield f"ws://127.0.0.1:{port}/ws"


async def test_a_client_that_answers_no_ping_is_closed_1011() -> None:
    # websockets' client answers every ping by itself, as a browser does.
    async with (
        _uvicorn(ws_ping_interval=0.2, ws_ping_timeout=0.3) as url,
        websockets.connect(url) as answering,
    ):
        silent = await RawClient.connect(url)
        silent.answering = False
        ping = await silent.next_event()
        assert ping.opcode.name == "PING"  # after ws_ping_interval
        close = await silent.close_frame(timeout=3)
        assert close is not None
        assert (close.code, close.reason) == (1011, "keepalive ping timeout")
        silent.close()
        # The one that answers has had pings all along and is still served.
        await answering.send("still here")
        assert await asyncio.wait_for(answering.recv(), 5) == "still here"


async def test_a_socket_open_at_shutdown_is_closed_1012() -> None:
    async with _uvicorn() as url:
        client = await RawClient.connect(url)
    close = await client.close_frame()
    assert close is not None and close.code == 1012
    client.close()
