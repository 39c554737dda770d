"""The bus bridge (docs/protocol.md section 15) on a real NATS JetStream and a real Redis:
inbound to every socket with requestId = correlation_id, one event per idempotency key
(also across a SIGKILL before the ack), dead letters with reasons, outbound in seq
order, and two hub processes sharing the inbound consumer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from companion_ws.failpoints import EXIT_CODE
from tests.support.backends import BusProbe, history, new_session
from tests.support.cluster import RedisServer
from tests.support.hub import HubProcess, create_pg_database, drop_pg_database, token
from tests.support.ws import connect


@pytest.fixture
def hubs(tmp_path: Path) -> Iterator[list[HubProcess]]:
    started: list[HubProcess] = []
    yield started
    for hub in started:
        hub.stop()


def _hub(tmp_path: Path, hubs: list[HubProcess], env: dict[str, str]) -> HubProcess:
    hub = HubProcess(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}",
        env=env,
        log_path=tmp_path / f"hub{len(hubs)}.log",
    )
    hubs.append(hub)
    return hub.start()


async def _drained(bus: BusProbe, timeout: float = 20.0) -> None:
    """Every inbound message acknowledged."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        if await bus.in_flight() == 0:
            return
        await asyncio.sleep(0.2)
    assert await bus.in_flight() == 0


def _has_request_id(rid: str) -> Callable[[dict[str, Any]], bool]:
    return lambda frame: frame.get("requestId") == rid


async def test_inbound_reaches_every_socket_with_its_correlation_id(
    bus: BusProbe, tmp_path: Path, hubs: list[HubProcess]
) -> None:
    hub = _hub(tmp_path, hubs, bus.env())
    sid = await new_session(hub)
    screens = [await connect(hub.ws_url, token("alice"), session_id=sid) for _ in range(3)]
    messages: list[dict[str, Any]] = [
        {"type": "contextual_update", "text": "quote_ready", "data": {"n": 1}},
        {"type": "transcript", "role": "agent", "message_id": "m1", "text": "Hi", "final": True},
        {"type": "step", "step_id": "s1", "name": "intent recognition", "status": "started"},
        {"type": "agent_state", "state": "thinking"},
    ]
    for i, message in enumerate(messages):
        await bus.send({**message, "session_id": sid, "correlation_id": f"c{i}"})
    for screen in screens:
        for i, message in enumerate(messages):
            frame = await screen.recv_until(_has_request_id(f"c{i}"), 10)
            assert frame["type"] == message["type"] and frame["sender"] == "bus"
            assert {k: frame[k] for k in message} == message
            assert isinstance(frame["seq"], int)
        await screen.close()


async def test_the_same_idempotency_key_twice_is_one_event(
    bus: BusProbe, tmp_path: Path, hubs: list[HubProcess]
) -> None:
    hub = _hub(tmp_path, hubs, bus.env())
    sid = await new_session(hub)
    screen = await connect(hub.ws_url, token("alice"), session_id=sid)
    once = {"session_id": sid, "type": "contextual_update", "text": "once"}
    await bus.send({**once, "idempotency_key": "k1", "correlation_id": "a"})
    await bus.send({**once, "idempotency_key": "k1", "correlation_id": "b"})
    await bus.send({**once, "text": "marker", "correlation_id": "m"})
    seen = []
    while True:
        frame = await screen.recv(10)
        if frame.get("type") == "contextual_update":
            seen.append(frame["requestId"])
            if frame["requestId"] == "m":
                break
    assert seen.count("a") + seen.count("b") == 1, seen
    await asyncio.sleep(0.5)
    texts = [e.get("text") for e in await history(hub, sid)]
    assert texts.count("once") == 1
    await screen.close()


async def test_a_message_whose_hub_dies_before_the_ack_is_delivered_once(
    bus: BusProbe, tmp_path: Path, hubs: list[HubProcess]
) -> None:
    env = bus.env(ack_wait=2.0)
    hub = _hub(tmp_path, hubs, env)
    sid = await new_session(hub)
    hub.stop()
    # The event is durable, then the process dies before acknowledging the message.
    hub.env = {**env, "COMPANION_FAILPOINTS": "bus_before_ack"}
    hub.start()
    await bus.send(
        {
            "session_id": sid,
            "type": "contextual_update",
            "text": "crash",
            "idempotency_key": "crash-1",
            "correlation_id": "c-crash",
        }
    )
    assert hub.wait(20) == EXIT_CODE
    hub.env = env
    hub.start()
    await _drained(bus)  # redelivered and acknowledged this time
    events = [e for e in await history(hub, sid) if e.get("requestId") == "c-crash"]
    assert len(events) == 1, events


async def test_what_cannot_be_applied_goes_to_the_dead_letter_stream(
    bus: BusProbe, tmp_path: Path, hubs: list[HubProcess]
) -> None:
    hub = _hub(tmp_path, hubs, bus.env())
    sid = await new_session(hub)
    ended = await new_session(hub)
    async with httpx.AsyncClient(base_url=hub.base_url) as http:
        r = await http.delete(
            f"/sessions/{ended}", headers={"Authorization": f"Bearer {token('alice')}"}
        )
        assert r.status_code == 200
    bad: list[tuple[bytes | dict[str, object], str]] = [
        (b"{not json", "invalid_json"),
        (b"[1, 2]", "invalid_message"),
        ({"type": "contextual_update", "text": "x"}, "invalid_message"),
        ({"session_id": "nope", "type": "contextual_update", "text": "x"}, "session_not_found"),
        ({"session_id": ended, "type": "contextual_update", "text": "x"}, "session_ended"),
        ({"session_id": sid, "type": "dance"}, "invalid_message"),
        ({"session_id": sid, "type": "transcript", "text": "no role"}, "invalid_message"),
        ({"session_id": sid, "type": "agent_state", "state": "asleep"}, "invalid_message"),
    ]
    for message, _ in bad:
        await bus.send(message)
    letters = await bus.dead(len(bad))
    assert len(letters) == len(bad), letters
    by_message = {letter["message"]: letter["reason"] for letter in letters}
    for message, reason in bad:
        text = message.decode() if isinstance(message, bytes) else json.dumps(message)
        assert by_message[text].startswith(reason + ":"), (text, by_message[text])
    assert [e["type"] for e in await history(hub, sid)] == []


async def test_outbound_carries_every_event_in_seq_order(
    bus: BusProbe, tmp_path: Path, hubs: list[HubProcess]
) -> None:
    hub = _hub(tmp_path, hubs, bus.env())
    sid = await new_session(hub)
    screen = await connect(hub.ws_url, token("alice"), session_id=sid)
    for i in range(15):
        await bus.send({"session_id": sid, "type": "contextual_update", "text": f"t{i}"})
        await screen.send({"type": "update_session_state", "key": f"k{i}", "value": i})
    seen: list[dict[str, Any]] = []
    while len(seen) < 31:  # client_joined + 15 updates + 15 state changes
        frame = await screen.recv(10)
        if "seq" in frame and frame["type"] != "session_joined":
            seen.append(frame)
    out = await bus.out(sid, len(seen))
    assert [f["seq"] for f in out] == list(range(1, len(seen) + 1))
    assert out == seen  # the frames exactly as the clients received them
    await screen.close()


@pytest.fixture
def pg_url() -> Iterator[str]:
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.fixture
def broker_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path / "redis").start()
    try:
        yield server
    finally:
        server.kill()


@pytest.mark.postgres
@pytest.mark.redis
async def test_two_hubs_share_the_inbound_consumer(
    bus: BusProbe, tmp_path: Path, pg_url: str, broker_redis: RedisServer, hubs: list[HubProcess]
) -> None:
    for i in range(2):
        hub = HubProcess(
            database_url=pg_url,
            env={
                **bus.env(ack_wait=2.0),
                "COMPANION_BROKER_URL": broker_redis.url,
                "COMPANION_AUTO_MIGRATE": "true" if i == 0 else "false",
            },
            log_path=tmp_path / f"hub{i}.log",
        )
        hubs.append(hub)
        hub.start()
    sid = await new_session(hubs[0])
    screens = [await connect(h.ws_url, token("alice"), session_id=sid) for h in hubs]
    count = 60
    for i in range(count):
        key = f"k{i % (count // 2)}"  # every key twice
        await bus.send(
            {
                "session_id": sid,
                "type": "contextual_update",
                "text": f"m{i}",
                "idempotency_key": key,
                "correlation_id": key,
            }
        )
    for screen in screens:
        got: set[str] = set()
        while len(got) < count // 2:
            frame = await screen.recv(15)
            if frame.get("type") == "contextual_update":
                assert frame["requestId"] not in got, frame
                got.add(frame["requestId"])
        await screen.close()
    await asyncio.sleep(0.5)
    updates = [e for e in await history(hubs[0], sid) if e["type"] == "contextual_update"]
    assert len(updates) == count // 2
    # A key in flight on the other hub was handed back (redelivered later): it drains,
    # as a duplicate, without a second event.
    await _drained(bus)
    updates = [e for e in await history(hubs[0], sid) if e["type"] == "contextual_update"]
    assert len(updates) == count // 2
