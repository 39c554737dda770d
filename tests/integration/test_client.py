"""``companion_ws.client.CompanionClient`` and ``companion-ws connect`` against a real hub:
the API, and that the client comes back from a cut network, a killed hub, a
slow-consumer close and a gap beyond the history window with the same state and seq as
everyone else, and stops for good when its token is refused."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from companion_ws.client import ClientClosed, ClientError, CompanionClient
from companion_ws.protocol.frames import BROADCAST_TYPES
from tests.support.hub import HubFactory, HubProcess, token
from tests.support.ws import connect

Frame = dict[str, Any]


class Proxy:
    """A TCP proxy in front of the hub, to break the network on purpose: ``cut()``
    resets every connection, ``down()``/``up()`` also refuse new ones, ``pause()``
    stops passing the hub's bytes to the client (a client that does not read)."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.accepting = True
        self.flowing = asyncio.Event()
        self.flowing.set()
        self._links: set[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = set()
        self._server: asyncio.Server | None = None

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    async def __aenter__(self) -> Proxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        self.flowing.set()
        self.cut()
        await self._server.wait_closed()

    def cut(self) -> None:
        for link in list(self._links):
            for writer in link:
                writer.transport.abort()

    def down(self) -> None:
        self.accepting = False
        self.cut()

    def up(self) -> None:
        self.accepting = True

    def pause(self) -> None:
        self.flowing.clear()

    def resume(self) -> None:
        self.flowing.set()

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.accepting:
            writer.transport.abort()
            return
        sock = socket.socket()
        # A small receive buffer, so a paused link backs up into the hub quickly.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.setblocking(False)
        try:
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", self.target_port))
        except OSError:
            sock.close()
            writer.transport.abort()
            return
        up_reader, up_writer = await asyncio.open_connection(sock=sock)
        link = (writer, up_writer)
        self._links.add(link)
        try:
            await asyncio.gather(
                self._pipe(reader, up_writer, None), self._pipe(up_reader, writer, self.flowing)
            )
        finally:
            self._links.discard(link)

    @staticmethod
    async def _pipe(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, gate: asyncio.Event | None
    ) -> None:
        try:
            while data := await reader.read(65536):
                if gate is not None:
                    await gate.wait()
                writer.write(data)
                await writer.drain()
        except OSError:
            pass
        finally:
            writer.close()


async def eventually(predicate: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait until ``predicate()`` holds (a bound on waiting, never on speed)."""
    async with asyncio.timeout(timeout):
        while not predicate():  # noqa: ASYNC110
            await asyncio.sleep(0.02)


async def drain(stream: Any) -> list[Frame]:
    """All frames of an ``events()`` iterator of a closed client."""
    async with asyncio.timeout(10):
        return [frame async for frame in stream]


def assert_exactly_once_in_order(frames: list[Frame]) -> None:
    """Broadcast frames continue the seq by one each, across reconnects; only a
    ``resync_required`` snapshot moves the position."""
    expected: int | None = None
    for frame in frames:
        kind = frame["type"]
        if (kind == "session_joined" and expected is None) or kind == "resync_required":
            expected = frame["seq"] + 1
        elif kind in BROADCAST_TYPES:
            assert expected is not None and frame["seq"] == expected, (frame, expected)
            expected += 1


async def test_the_client_api(shared_hub: HubProcess) -> None:
    url = shared_hub.ws_url
    async with CompanionClient(url, token=token("alice"), client="agent") as a:
        assert a.connected and a.session_id and a.connection_id and a.epoch
        assert a.state == {} and a.version == 0 and a.reconnects == 0
        assert a.seq == a.welcome["seq"] + 1  # its own client_joined
        b = CompanionClient(url, token=lambda: token("alice"), session_id=a.session_id)
        first, second = b.events(), b.events()
        await b.start()
        assert b.session_id == a.session_id and b.connection_id != a.connection_id

        echo = await a.update_state({"ui": {"step": "quotes"}})
        assert echo["type"] == "session_state_updated" and echo["version"] == 1
        assert a.state == {"ui": {"step": "quotes"}} and a.version == 1 and a.seq == echo["seq"]
        waiter = asyncio.create_task(b.wait_for(lambda f: f.get("text") == "quote_ready"))
        await asyncio.sleep(0)
        update = await a.contextual_update("quote_ready", {"n": 1})
        assert update["seq"] == echo["seq"] + 1 and update["data"] == {"n": 1}
        assert (await waiter) == update
        result = await a.call_tool(
            "get_shipping_quotes", "call-1", {"from_zip": "90210", "to_zip": "10001", "weight": 5}
        )
        assert result["type"] == "client_tool_result" and result["is_error"] is False
        assert result["tool_call_id"] == "call-1" and a.state["quotes"]
        with pytest.raises(ClientError) as conflict:
            await a.update_state({"x": 1}, expected_version=0)
        assert conflict.value.code == "version_conflict"
        assert conflict.value.frame["version"] == a.version
        presence = await b.request({"type": "get_presence"})
        assert {c["connection_id"] for c in presence["clients"]} == {
            a.connection_id,
            b.connection_id,
        }
        await eventually(lambda: b.seq == a.seq)
        assert b.state == a.state and b.version == a.version
        # a replay that overlaps what b has seen: the duplicates are dropped by seq
        seen, state = b.seq, b.state
        await b.send({"type": "resume", "last_seq": seen - 5, "epoch": b.epoch})
        resumed = await b.wait_for(lambda f: f["type"] == "resumed")
        assert resumed["replayed"] == 5 and resumed["to_seq"] == seen
        assert b.seq == seen and b.state == state

        await b.close()
        assert b.closed_code == 1000 and not b.connected
        with pytest.raises(ClientClosed):
            await b.request({"type": "ping"})
        frames = await drain(first)
        assert frames == await drain(second)  # each iterator gets every frame
        assert frames[0]["type"] == "session_joined"
        assert [f for f in frames if f.get("requestId") == echo["requestId"]] == [echo]
        assert_exactly_once_in_order(frames)
        assert [f["seq"] for f in frames if f["type"] in BROADCAST_TYPES][-1] == b.seq


async def test_connect_command(shared_hub: HubProcess) -> None:
    """``companion-ws connect``, driven through pipes: it prints the welcome, sends
    typed lines and prints what comes back; the end of stdin ends it."""
    env = {**os.environ, "COMPANION_TOKEN": token("alice")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "companion_ws", "connect", "--url", shared_hub.ws_url),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None

    async def next_frame(predicate: Callable[[Frame], bool]) -> Frame:
        assert proc.stdout is not None
        async with asyncio.timeout(20):
            while True:
                line = await proc.stdout.readline()
                assert line, "connect exited early"
                frame: Frame = json.loads(line)
                if predicate(frame):
                    return frame

    try:
        welcome = await next_frame(lambda f: True)
        assert welcome["type"] == "session_joined" and welcome["user_id"] == "alice"
        observer = await connect(
            shared_hub.ws_url, token("alice"), session_id=welcome["session_id"]
        )
        proc.stdin.write(b'{"type": "contextual_update", "text": "typed", "data": {"n": 7}}\n')
        proc.stdin.write(b"ping\n")
        await proc.stdin.drain()
        echo = await next_frame(lambda f: f["type"] == "contextual_update")
        assert echo["text"] == "typed" and echo["data"] == {"n": 7}
        assert echo["sender"] == welcome["connection_id"]
        assert await observer.recv_type("contextual_update") == echo
        assert (await next_frame(lambda f: f["type"] != "client_joined"))["type"] == "pong"
        proc.stdin.close()
        async with asyncio.timeout(20):
            assert await proc.wait() == 0
        await observer.close()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def test_a_companion_that_joined_by_qr_comes_back_with_its_reconnect_token(
    shared_hub: HubProcess,
) -> None:
    owner = await connect(shared_hub.ws_url, token("alice"))
    sid = owner.welcome["session_id"]
    async with httpx.AsyncClient(base_url=shared_hub.base_url) as http:
        reply = await http.post(
            f"/sessions/{sid}/join-token", headers={"Authorization": f"Bearer {token('alice')}"}
        )
    join_token = reply.json()["join_token"]
    async with Proxy(shared_hub.port) as proxy:
        phone = CompanionClient(proxy.ws_url, token=join_token, client="ui", backoff_max=0.3)
        frames = phone.events()
        await phone.start()
        assert phone.session_id == sid and phone.reconnect_token
        proxy.cut()
        await eventually(lambda: phone.last_close_code == 1006)  # it may be back already
        away = await owner.request({"type": "contextual_update", "text": "while-away"})
        await eventually(lambda: phone.connected and phone.seq >= away["seq"])
        assert phone.reconnects == 1 and phone.session_id == sid
        await phone.close()
    got = await drain(frames)
    assert_exactly_once_in_order(got)
    assert [f.get("text") for f in got].count("while-away") == 1
    assert "resumed" in [f["type"] for f in got]
    await owner.close()


@pytest.mark.parametrize(("who", "code"), [("expired", 4401), ("stranger", 4403)])
async def test_a_reconnect_with_a_refused_token_stops_the_client(
    shared_hub: HubProcess, who: str, code: int
) -> None:
    calls = 0

    def tokens() -> str:
        nonlocal calls
        calls += 1
        if calls == 1:
            return token("alice")
        return token("alice", ttl=-120) if who == "expired" else token("mallory")

    async with Proxy(shared_hub.port) as proxy:
        client = CompanionClient(proxy.ws_url, token=tokens, backoff_max=0.3)
        frames = client.events()
        await client.start()
        proxy.cut()
        got = await drain(frames)  # ends when the client stops for good
    assert client.closed_code == code and not client.connected
    assert got[-1]["type"] == "error"
    assert got[-1]["code"] == ("unauthorized" if who == "expired" else "forbidden")
    assert [f["type"] for f in got].count("session_joined") == 1
    assert calls == 2  # no retry after a terminal close
    with pytest.raises(ClientClosed) as closed:
        await client.request({"type": "ping"})
    assert closed.value.code == code


async def test_the_client_survives_a_killed_hub(hub_factory: HubFactory) -> None:
    """SIGKILL, then a restart on the same database and port: both clients come back
    with a replay (every event they saw was committed first: the same epoch, no
    snapshot) and agree with a newcomer on the state and the seq."""
    hub = hub_factory().start()
    options: dict[str, Any] = {"backoff_max": 0.5}
    a = CompanionClient(hub.ws_url, token=token("alice"), client="ui", **options)
    frames = a.events()
    await a.start()
    b = CompanionClient(hub.ws_url, token=token("alice"), session_id=a.session_id, **options)
    await b.start()
    for i in range(12):
        if i % 3 == 0:
            await b.update_state({"step": i, f"k{i}": i})
        await b.contextual_update(f"before-{i}")
    old_epoch = a.epoch

    hub.kill()
    await eventually(lambda: not a.connected and not b.connected)
    await asyncio.to_thread(hub.start)
    await eventually(lambda: a.connected and b.connected)
    await b.update_state({"after": "restart"})
    marker = await b.contextual_update("marker")
    await eventually(lambda: a.seq >= marker["seq"])

    newcomer = await connect(hub.ws_url, token("alice"), session_id=a.session_id)
    truth = await newcomer.request({"type": "get_session_state"})
    assert a.state == b.state == truth["state"] and truth["state"]["after"] == "restart"
    assert a.version == b.version == truth["version"]
    assert truth["seq"] == marker["seq"] + 1  # the newcomer's own join
    await eventually(lambda: a.seq >= truth["seq"] and b.seq >= truth["seq"])
    assert a.seq == b.seq == truth["seq"]
    assert a.epoch == b.epoch == newcomer.welcome["epoch"] == old_epoch
    await newcomer.close()
    await a.close()
    await b.close()
    got = await drain(frames)
    assert_exactly_once_in_order(got)
    assert [f["type"] for f in got].count("resync_required") == 0


async def slow_closes(http: httpx.AsyncClient) -> float:
    text = (await http.get("/metrics")).text
    for line in text.splitlines():
        if line.startswith("companion_slow_consumer_closes_total "):
            return float(line.split()[1])
    raise AssertionError("no slow-consumer metric")


async def test_the_client_survives_a_slow_consumer_close(hub_factory: HubFactory) -> None:
    """A client that stops reading its socket while others publish is closed (4409)
    once its send queue overflows; it reconnects, the missed events are replayed, and it
    ends with the same state and seq as a client that never disconnected."""
    hub = hub_factory(
        env={"COMPANION_OUTBOX_LIMIT": "32", "COMPANION_SLOW_CLOSE_GRACE": "0.5"}
    ).start()
    publisher = CompanionClient(hub.ws_url, token=token("alice"))
    await publisher.start()
    sid = publisher.session_id
    steady = CompanionClient(hub.ws_url, token=token("alice"), session_id=sid, client="ui")
    await steady.start()
    blob = "x" * 40_000
    async with Proxy(hub.port) as proxy, httpx.AsyncClient(base_url=hub.base_url) as http:
        slow = CompanionClient(
            proxy.ws_url, token=token("alice"), session_id=sid, client="ui", backoff_max=0.3
        )
        frames = slow.events()
        await slow.start()
        proxy.pause()
        published = 0
        while await slow_closes(http) == 0:
            for _ in range(5):
                await publisher.contextual_update(f"big-{published}", {"blob": blob})
                published += 1
            await publisher.update_state({"count": published})
            assert published < 600, "the hub never closed the slow client"
        for i in range(5):  # more while it is gone
            await publisher.update_state({"after": i})
            await publisher.contextual_update(f"after-{i}")
        proxy.resume()
        await eventually(lambda: slow.reconnects >= 1 and slow.connected)
        marker = await publisher.contextual_update("marker")
        await eventually(lambda: slow.seq >= marker["seq"] and steady.seq >= marker["seq"])
        assert slow.seq == steady.seq == publisher.seq == marker["seq"]
        assert slow.state == steady.state == publisher.state
        assert slow.version == steady.version == publisher.version
        assert steady.reconnects == 0 and await slow_closes(http) == 1
        # the close frame, or the bare end of the stream if the hub had to cut it off
        assert slow.last_close_code in (4409, 1006)
        await slow.close()
    got = await drain(frames)
    assert_exactly_once_in_order(got)
    kinds = [f["type"] for f in got]
    assert "resumed" in kinds and "resync_required" not in kinds
    for client in (publisher, steady):
        await client.close()


async def test_the_client_rebuilds_from_a_snapshot_beyond_the_window(
    hub_factory: HubFactory,
) -> None:
    hub = hub_factory(env={"COMPANION_HISTORY_SIZE": "10"}).start()
    publisher = CompanionClient(hub.ws_url, token=token("alice"))
    await publisher.start()
    async with Proxy(hub.port) as proxy:
        client = CompanionClient(
            proxy.ws_url, token=token("alice"), session_id=publisher.session_id, backoff_max=0.3
        )
        frames = client.events()
        await client.start()
        proxy.down()
        await eventually(lambda: not client.connected)
        for i in range(30):
            if i % 5 == 0:
                await publisher.update_state({"n": i, "seen": {str(i): True}})
            await publisher.contextual_update(f"gone-{i}")
        proxy.up()
        await eventually(lambda: client.connected)
        last = await publisher.update_state({"final": True})
        await eventually(lambda: client.seq >= last["seq"])
        assert client.seq == publisher.seq and client.state == publisher.state
        assert client.version == publisher.version
        await client.close()
    got = await drain(frames)
    assert_exactly_once_in_order(got)
    assert [f["type"] for f in got].count("resync_required") == 1
    assert not [f for f in got if f.get("text", "").startswith("gone-")]
    await publisher.close()


async def test_the_client_gives_up_after_max_attempts() -> None:
    """Nothing listening: ``start()`` fails after ``max_attempts`` connects."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, never listening: connections are refused
        client = CompanionClient(
            f"ws://127.0.0.1:{port}", token="t", max_attempts=3, backoff_initial=0.01
        )
        frames = client.events()
        with pytest.raises(ClientClosed) as closed:
            async with asyncio.timeout(20):
                await client.start()
    assert closed.value.code == 1006 and "3 attempts" in closed.value.reason
    assert await drain(frames) == []
    await client.close()
    assert client.closed_code == 1006  # the first reason to stop stands


async def test_a_change_queued_offline_is_not_applied_over_a_newer_one(
    shared_hub: HubProcess,
) -> None:
    """The Python client's offline queue (issue 23): a state change asked for while the
    client is offline carries the version it last saw; another screen's change made
    meanwhile wins, and the queued one raises ``version_conflict`` on reconnect."""
    network = asyncio.Event()
    network.set()

    async def gated_token() -> str:  # the phone's network: reconnects wait for it
        await network.wait()
        return token("alice")

    laptop = CompanionClient(shared_hub.ws_url, token=token("alice"))
    await laptop.start()
    phone = CompanionClient(
        shared_hub.ws_url, token=gated_token, session_id=laptop.session_id, backoff_max=0.2
    )
    await phone.start()
    try:
        await laptop.update_state({"selected_option": None})
        await eventually(lambda: phone.version == laptop.version)
        seen = phone.version
        network.clear()
        assert phone._ws is not None
        phone._ws.transport.abort()  # the phone's network drops
        await eventually(lambda: not phone.connected)
        queued = asyncio.create_task(phone.update_state({"selected_option": "usps"}))
        await asyncio.sleep(0.2)
        await laptop.update_state({"selected_option": "ups"})  # newer, made meanwhile
        network.set()
        with pytest.raises(ClientError) as conflict:
            await queued
        assert conflict.value.code == "version_conflict"
        assert conflict.value.frame["version"] == seen + 1
        await eventually(lambda: phone.version == laptop.version)
        assert phone.state["selected_option"] == laptop.state["selected_option"] == "ups"
    finally:
        await phone.close()
        await laptop.close()
