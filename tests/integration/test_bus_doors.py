"""The bus bridge as a door (docs/protocol.md sections 4 and 15, issue 22 item 8), on a real
NATS JetStream and a real Redis: a message over the event limit is a ``too_large`` dead
letter, one nested too deep an ``invalid_message`` one, and no screen sees either; a
message reaches only a live session it names; a ``sender`` is never the writer's to
choose; only the backend types are publishable; idempotency keys are scoped to their
session, and a tool call cannot forge a key's receipt."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import nats.js.errors
import pytest
import redis.asyncio as aioredis

from companion_ws.bus.base import BusConfig
from companion_ws.bus.nats import NatsBus
from companion_ws.bus.redis_streams import RedisStreamsBus
from tests.support.backends import NATS_URL, REDIS_BUS_URL, BusProbe, history, new_session
from tests.support.hub import HubFactory, HubProcess, token
from tests.support.ws import WS, connect


@pytest.fixture
def bus_hub(bus: BusProbe, tmp_path: Path) -> Iterator[HubProcess]:
    hub = HubProcess(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}",
        env=bus.env(),
        log_path=tmp_path / "hub.log",
    ).start()
    try:
        yield hub
    finally:
        hub.stop()


def _deep(levels: int) -> Any:
    value: Any = {}
    for _ in range(levels):
        value = {"a": value}
    return value


def _result_of(request_id: str) -> Callable[[dict[str, Any]], bool]:
    return lambda fr: fr.get("requestId") == request_id and fr["type"] == "client_tool_result"


def _text(message: dict[str, Any] | bytes) -> str:
    return message.decode() if isinstance(message, bytes) else json.dumps(message)


async def _letters(bus: BusProbe, sent: list[dict[str, Any] | bytes]) -> dict[str, Any]:
    """The dead letter of each message sent, by its text (or its quoted beginning)."""
    letters = await bus.dead(len(sent), timeout=20)
    assert len(letters) == len(sent), letters
    by_text = {letter["message"]: letter for letter in letters}
    found = {}
    for message in sent:
        text = _text(message)
        hits = [v for k, v in by_text.items() if text.startswith(k)]
        assert len(hits) == 1, (text[:200], list(by_text))
        found[text] = hits[0]
    return found


async def _only_marker(bus: BusProbe, screen: WS, sid: str) -> None:
    """Nothing sent before reached the screen: the next update is a marker sent now."""
    await bus.send({"session_id": sid, "type": "contextual_update", "text": "marker"})
    frame = await screen.recv_until(lambda fr: fr.get("type") == "contextual_update", 20)
    assert frame["text"] == "marker", frame


async def test_a_message_over_the_event_limit_is_a_too_large_dead_letter(
    bus: BusProbe, bus_hub: HubProcess
) -> None:
    sid = await new_session(bus_hub)
    screen = await connect(bus_hub.ws_url, token("alice"), session_id=sid)
    big = {"session_id": sid, "type": "contextual_update", "text": "big", "data": "x" * 100_000}
    sent: list[dict[str, Any] | bytes] = [big]
    if bus.kind == "redis":  # NATS refuses a message over its max_payload (1 MiB) itself
        sent.append(json.dumps({**big, "data": "y" * 2**21}).encode())
    for message in sent:
        await bus.send(message)
    letters = await _letters(bus, sent)
    for message in sent:
        letter = letters[_text(message)]
        assert letter["reason"].startswith("too_large:"), letter["reason"]
        # The dead letter quotes the message's beginning, not all of it.
        assert letter["truncated"] is True and letter["bytes"] == len(_text(message))
        assert len(letter["message"]) == 4096
    await _only_marker(bus, screen, sid)
    await screen.close()


async def test_a_message_nested_deeper_than_64_levels_is_a_dead_letter(
    bus: BusProbe, bus_hub: HubProcess
) -> None:
    sid = await new_session(bus_hub)
    screen = await connect(bus_hub.ws_url, token("alice"), session_id=sid)
    deep = {"session_id": sid, "type": "contextual_update", "text": "deep", "data": _deep(900)}
    await bus.send(deep)
    letter = (await _letters(bus, [deep]))[_text(deep)]
    assert letter["reason"].startswith("invalid_message:") and "nested" in letter["reason"]
    await _only_marker(bus, screen, sid)
    await screen.close()


async def test_a_message_reaches_only_a_live_session_with_the_backend_types_as_the_bus(
    bus: BusProbe, bus_hub: HubProcess
) -> None:
    sid = await new_session(bus_hub)
    ended = await new_session(bus_hub)
    async with httpx.AsyncClient(base_url=bus_hub.base_url) as http:
        r = await http.delete(
            f"/sessions/{ended}", headers={"Authorization": f"Bearer {token('alice')}"}
        )
        assert r.status_code == 200
    screen = await connect(bus_hub.ws_url, token("alice"), session_id=sid)
    update = {"type": "contextual_update", "text": "x"}
    bad: list[tuple[dict[str, Any] | bytes, str]] = [
        ({**update, "session_id": ended}, "session_ended"),
        ({**update, "session_id": uuid.uuid4().hex}, "session_not_found"),
        ({**update, "session_id": 42}, "invalid_message"),
        ({**update, "session_id": ""}, "invalid_message"),
        ({**update, "session_id": sid + "x" * 64}, "invalid_message"),
        ({**update, "session_id": f"../{ended[:8]}"}, "session_not_found"),
        ({**update, "session_id": [sid]}, "invalid_message"),
    ]
    # Hub frames a backend may not forge: only the four backend types are publishable.
    for kind in ("session_ended", "session_state_updated", "client_joined", "device_revoked"):
        bad.append(
            ({"session_id": sid, "type": kind, "reason": "x", "patch": {}}, "invalid_message")
        )
    for message, _ in bad:
        await bus.send(message)
    letters = await _letters(bus, [message for message, _ in bad])
    for message, reason in bad:
        got = letters[_text(message)]["reason"]
        assert got.startswith(reason + ":"), (message, got)
    # A sender is derived, never taken from the message.
    spoof = {**update, "session_id": sid, "text": "spoof", "sender": "owner:alice"}
    await bus.send(spoof)
    frame = await screen.recv_until(lambda fr: fr.get("type") == "contextual_update", 20)
    assert (frame["text"], frame["sender"]) == ("spoof", "bus")
    assert [e["type"] for e in await history(bus_hub, ended)][-1] == "session_ended"
    await screen.close()


async def test_an_idempotency_key_is_scoped_to_its_session(
    bus: BusProbe, bus_hub: HubProcess
) -> None:
    first, second = await new_session(bus_hub), await new_session(bus_hub)
    screens = {
        sid: await connect(bus_hub.ws_url, token("alice"), session_id=sid)
        for sid in (first, second)
    }
    for sid in (first, second):
        await bus.send(
            {"session_id": sid, "type": "contextual_update", "text": sid, "idempotency_key": "k"}
        )
    # The same key again in the first session is that message again: one event.
    again = {"session_id": first, "type": "contextual_update", "text": first}
    await bus.send({**again, "idempotency_key": "k", "correlation_id": "again"})
    await bus.send({"session_id": first, "type": "contextual_update", "text": "marker"})
    for sid, texts in ((first, [first, "marker"]), (second, [second])):
        got: list[str] = []
        while len(got) < len(texts):
            frame = await screens[sid].recv_until(
                lambda fr: fr.get("type") == "contextual_update", 20
            )
            got.append(frame["text"])
        assert got == texts, (sid, got)
        await screens[sid].close()


async def test_a_key_reused_for_a_different_message_is_a_dead_letter_not_a_duplicate(
    bus: BusProbe, bus_hub: HubProcess
) -> None:
    sid = await new_session(bus_hub)
    screen = await connect(bus_hub.ws_url, token("alice"), session_id=sid)
    first = {"session_id": sid, "type": "contextual_update", "text": "pay 10"}
    first["idempotency_key"] = "k"
    await bus.send(first)
    frame = await screen.recv_until(lambda fr: fr.get("type") == "contextual_update", 20)
    assert frame["text"] == "pay 10"
    other = {**first, "text": "pay 1000"}
    await bus.send(other)
    reason = (await _letters(bus, [other]))[_text(other)]["reason"]
    assert reason.startswith("invalid_message:") and "different message" in reason, reason
    await _only_marker(bus, screen, sid)
    await screen.close()


async def test_a_tool_call_cannot_forge_the_receipt_of_another_sessions_key(
    bus: BusProbe, hub_factory: HubFactory
) -> None:
    """The ledger's ids are shared with tool calls, whose ids a client chooses: one
    named like a key's receipt does not answer for it (on old code the message was
    redelivered for ever)."""
    hub = hub_factory(env=bus.env()).start()
    victim, mine = await new_session(hub), await new_session(hub, owner="mallory")
    ws = await connect(hub.ws_url, token("mallory"), session_id=mine)
    for forged in (f"publish:{victim}:k1#done", f"publish:{victim}:k2"):
        await ws.send(
            {
                "type": "client_tool_call",
                "requestId": forged,
                "client_tool_call": {
                    "tool_name": "get_shipping_quotes",
                    "tool_call_id": forged,
                    "parameters": {"from_zip": "1"},
                },
            }
        )
        reply = await ws.recv_until(_result_of(forged), 10)
        assert reply["is_error"] is True  # a bad parameter: an error, and a ledger row
    messages: list[dict[str, Any] | bytes] = [
        {"session_id": victim, "type": "contextual_update", "text": t, "idempotency_key": t}
        for t in ("k1", "k2")
    ]
    for message in messages:
        await bus.send(message)
    letters = await _letters(bus, messages)
    for message in messages:
        reason = letters[_text(message)]["reason"]
        assert reason.startswith("invalid_message:") and "idempotency_key" in reason, reason
    await ws.close()


async def test_redis_streams_keep_no_handled_message_and_cap_the_dead_letters() -> None:
    """Nothing a writer of ``<prefix>:in`` sends grows Redis for ever: a handled message
    is deleted with its acknowledgement, and dead letters are capped."""
    prefix = f"t{uuid.uuid4().hex[:10]}"
    config = BusConfig(url=REDIS_BUS_URL, prefix=prefix, dead_maxlen=10)
    bus = RedisStreamsBus(config)
    redis = aioredis.Redis.from_url(REDIS_BUS_URL)
    handled: asyncio.Queue[bytes] = asyncio.Queue()

    async def handler(data: bytes) -> bool:
        await handled.put(data)
        return True

    try:
        await bus.start(handler)
        for i in range(5):
            await redis.xadd(f"{prefix}:in", {"data": json.dumps({"n": i})})
        for _ in range(5):
            await asyncio.wait_for(handled.get(), 20)
        for _ in range(200):  # the deletion follows the handler's answer
            if await redis.xlen(f"{prefix}:in") == 0:
                break
            await asyncio.sleep(0.1)
        assert await redis.xlen(f"{prefix}:in") == 0
        for i in range(30):
            await bus.dead(json.dumps({"reason": "r: x", "message": str(i)}).encode())
        assert await redis.xlen(f"{prefix}:dead") == 10
    finally:
        await bus.close()
        keys = [k async for k in redis.scan_iter(f"{prefix}:*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def test_the_nats_stream_the_hub_makes_refuses_a_message_over_the_body_limit() -> None:
    """The stream the hub makes takes at most ``COMPANION_MAX_BODY_BYTES`` a message, so a
    writer is refused at its publish; the hub never reads the message to refuse it."""
    tag = uuid.uuid4().hex[:10]
    config = BusConfig(
        url=NATS_URL, prefix=f"t{tag}", stream=f"T{tag.upper()}", max_message_bytes=4096
    )
    bus = NatsBus(config)
    handled: asyncio.Queue[bytes] = asyncio.Queue()

    async def handler(data: bytes) -> bool:
        await handled.put(data)
        return True

    nc = await nats.connect(NATS_URL)
    js = nc.jetstream()
    try:
        await bus.start(handler)
        assert (await js.stream_info(config.stream)).config.max_msg_size == 4096
        with pytest.raises(nats.js.errors.BadRequestError):
            await js.publish(f"{config.prefix}.in", b'{"x": "' + b"y" * 4096 + b'"}')
        await js.publish(f"{config.prefix}.in", b'{"n": 1}')
        assert await asyncio.wait_for(handled.get(), 20) == b'{"n": 1}'
        assert handled.empty()
    finally:
        await bus.close()
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await js.delete_stream(config.stream)
        await nc.close()
