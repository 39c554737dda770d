"""Abuse (docs/protocol.md section 4, *v1.1 abuse*): every frame counts against the rate
limit and a flood is closed 4429; HTTP bodies over the limit are 413 unread; JSON
nested deeper than 64 levels is ``invalid_message``; connection attempts per client
address are limited before any token check; ``/metrics`` labels never take a value a
client chose. Each time the hub goes on serving everyone else."""

from __future__ import annotations

import asyncio
import functools
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import websockets

from tests.support.hub import HubFactory, HubProcess, token
from tests.support.ws import WS, connect

MIB = 1024 * 1024
# 950 objects deep (as text: Python's json cannot encode it): decodes, but would
# overflow the recursion of the state's merge patch.
DEEP = '{"a":' * 949 + "{}" + "}" * 949


def _user() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


def _answers(request_id: str, frame: dict[str, Any]) -> bool:
    return frame.get("requestId") == request_id


def _auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user)}"}


async def _drain_until_closed(ws: WS, timeout: float = 10.0) -> tuple[list[dict[str, Any]], int]:
    """Every frame until the server closes, and the close code."""
    frames: list[dict[str, Any]] = []
    try:
        async with asyncio.timeout(timeout):
            while True:
                frames.append(json.loads(await ws.conn.recv()))
    except websockets.ConnectionClosed as exc:
        assert exc.rcvd is not None
        return frames, exc.rcvd.code


async def _still_serves(hub: HubProcess, ws: WS) -> None:
    """An open connection answers, a new one is welcomed, HTTP answers."""
    assert (await ws.request({"type": "ping"}))["type"] == "pong"
    fresh = await connect(hub.ws_url, token(_user()))
    assert (await fresh.request({"type": "ping"}))["type"] == "pong"
    await fresh.close()
    async with httpx.AsyncClient(base_url=hub.base_url) as http:
        assert (await http.get("/healthz")).status_code == 200


async def test_a_flood_of_invalid_frames_is_rate_limited_then_closed_4429(
    hub_factory: HubFactory,
) -> None:
    hub = hub_factory(
        env={
            "COMPANION_RATE_LIMIT_PER_SECOND": "20",
            "COMPANION_RATE_LIMIT_BURST": "20",
            "COMPANION_RATE_LIMIT_FLOOD": "20",
        }
    ).start()
    bystander = await connect(hub.ws_url, token(_user()))
    flooder = await connect(hub.ws_url, token(_user()))
    garbage: list[str | bytes] = ['{"type": "teleport"}', "not json", b"\x00binary", "[1]"]
    try:
        for i in range(400):
            await flooder.conn.send(garbage[i % len(garbage)])
    except websockets.ConnectionClosed:
        pass  # closed before the end of the flood: fine
    frames, code = await _drain_until_closed(flooder)
    assert code == 4429
    codes = [f["code"] for f in frames if f["type"] == "error"]
    assert {"unknown_type", "invalid_json", "invalid_message"} <= set(codes[:20])
    assert codes[-1] == "rate_limited"
    # Invalid frames were limited too: far fewer answers than frames, most of them
    # rate_limited once the burst was spent.
    assert codes.count("rate_limited") > 20 and len(codes) < 200
    await _still_serves(hub, bystander)
    await bystander.close()


async def test_a_client_that_slows_down_is_answered_rate_limited_and_not_closed(
    hub_factory: HubFactory,
) -> None:
    hub = hub_factory(
        env={
            "COMPANION_RATE_LIMIT_PER_SECOND": "50",
            "COMPANION_RATE_LIMIT_BURST": "10",
            "COMPANION_RATE_LIMIT_FLOOD": "50",
        }
    ).start()
    ws = await connect(hub.ws_url, token(_user()))
    for i in range(30):
        await ws.send({"type": "teleport", "requestId": f"t{i}"})
    replies = [await ws.recv_until(functools.partial(_answers, f"t{i}")) for i in range(30)]
    assert {r["code"] for r in replies} == {"unknown_type", "rate_limited"}
    await asyncio.sleep(0.5)  # both buckets refill
    assert (await ws.request({"type": "ping"}))["type"] == "pong"
    assert ws.conn.close_code is None
    await ws.close()


async def _chunks(total: int, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    sent = 0
    while sent < total:
        yield b"x" * min(size, total - sent)
        sent += size


async def test_bodies_over_the_limit_are_413_payload_too_large(hub_factory: HubFactory) -> None:
    secret = "wsec_" + "y" * 32
    hub = hub_factory(env={"COMPANION_ELEVENLABS_WEBHOOK_SECRET": secret}).start()
    owner = _user()
    ws = await connect(hub.ws_url, token(owner))
    sid = ws.welcome["session_id"]
    events = f"/sessions/{sid}/events"
    async with httpx.AsyncClient(base_url=hub.base_url, timeout=15) as http:
        # Announced by Content-Length: refused at once.
        big = json.dumps({"text": "t", "data": "x" * (2 * MIB)}).encode()
        for path, headers in (
            (events, _auth(owner)),
            ("/elevenlabs/post-call", {"ElevenLabs-Signature": "t=1,v0=bad"}),
            (f"/sessions/{sid}/state", _auth(owner)),
        ):
            method = "PATCH" if path.endswith("/state") else "POST"
            got = await http.request(method, path, content=big, headers=headers)
            assert got.status_code == 413, (path, got.text)
            assert got.json()["error"]["code"] == "payload_too_large"
        # Streamed without a length (chunked): counted, refused past the limit.
        for path, headers in (
            (events, _auth(owner)),
            ("/elevenlabs/post-call", {"ElevenLabs-Signature": "t=1,v0=bad"}),
        ):
            got = await http.post(path, content=_chunks(2 * MIB), headers=headers)
            assert got.status_code == 413, (path, got.text)
            assert got.json() == {
                "error": {"code": "payload_too_large", "message": got.json()["error"]["message"]}
            }
        # Under the limit, chunked or not, still works.
        small = {"text": "fits", "data": "x" * 1000}
        ok = await http.post(events, json=small, headers=_auth(owner))
        assert ok.status_code in (200, 201, 202), ok.text

        async def one_chunk() -> AsyncIterator[bytes]:
            yield json.dumps(small).encode()

        ok = await http.post(events, content=one_chunk(), headers=_auth(owner))
        assert ok.status_code in (200, 201, 202), ok.text
    await _still_serves(hub, ws)
    await ws.close()


async def test_a_950_deep_patch_is_invalid_message_and_the_hub_still_serves(
    hub_factory: HubFactory,
) -> None:
    hub = hub_factory().start()
    owner = _user()
    ws = await connect(hub.ws_url, token(owner))
    sid = ws.welcome["session_id"]
    other = await connect(hub.ws_url, token(owner), session_id=sid)
    frames = [
        '{"type":"update_session_state","patch":{"deep":%s},"requestId":"%s"}',
        '{"type":"update_session_state","key":"deep","value":%s,"requestId":"%s"}',
        '{"type":"contextual_update","text":"t","data":%s,"requestId":"%s"}',
        '{"type":"client_tool_call","client_tool_call":{"tool_name":"get_shipping_quotes",'
        '"tool_call_id":"deep-1","parameters":{"p":%s}},"requestId":"%s"}',
    ]
    for i, frame in enumerate(frames):
        await ws.send(frame % (DEEP, f"d{i}"))
        reply = await ws.recv_until(functools.partial(_answers, f"d{i}"))
        assert (reply["type"], reply["code"]) == ("error", "invalid_message"), reply
    async with httpx.AsyncClient(base_url=hub.base_url, timeout=15) as http:
        got = await http.patch(
            f"/sessions/{sid}/state",
            content='{"deep":' + DEEP + "}",
            headers={**_auth(owner), "Content-Type": "application/json"},
        )
        assert got.status_code == 400 and got.json()["error"]["code"] == "invalid_message"
        state = await http.get(f"/sessions/{sid}/state", headers=_auth(owner))
        assert state.json() == {"state": {}, "version": 0}
    # Nothing reached the other client but its own pong.
    assert (await other.request({"type": "ping"}))["type"] == "pong"
    reply = await ws.request({"type": "update_session_state", "key": "ok", "value": True})
    assert reply["type"] == "session_state_updated" and reply["version"] == 1
    await _still_serves(hub, other)
    await ws.close()
    await other.close()


async def _attempt(url: str, **kwargs: Any) -> tuple[str | None, int]:
    """One connect with a bad token: the error code it is sent and the close code."""
    async with websockets.connect(url, open_timeout=10, **kwargs) as conn:
        try:
            error = json.loads(await asyncio.wait_for(conn.recv(), 10))
            await asyncio.wait_for(conn.recv(), 10)
        except websockets.ConnectionClosed as exc:
            assert exc.rcvd is not None
            return error.get("code"), exc.rcvd.code
    raise AssertionError("the connection was not closed")


async def test_connects_per_address_are_limited_before_the_token_check(
    hub_factory: HubFactory,
) -> None:
    hub = hub_factory(env={"COMPANION_CONNECT_RATE": "5", "COMPANION_CONNECT_BURST": "10"}).start()
    settled = await connect(hub.ws_url, token(_user()))
    bad = f"{hub.ws_url}/ws?token=not-a-valid-token-at-all-xx"

    async def paced(i: int) -> tuple[str | None, int]:
        await asyncio.sleep(i / 100)  # 100 connects a second, from 127.0.0.1
        return await _attempt(bad)

    results = await asyncio.gather(*(paced(i) for i in range(100)))
    refused = [r for r in results if r == ("rate_limited", 4429)]
    checked = [r for r in results if r == ("unauthorized", 4401)]
    assert len(refused) + len(checked) == 100, results
    assert 9 <= len(checked) <= 25 and len(refused) >= 75, (len(checked), len(refused))
    # Another address connects normally meanwhile, and the open socket goes on.
    other = f"{hub.ws_url}/ws?token={token(_user())}"
    async with websockets.connect(other, local_addr=("127.0.0.2", 0), open_timeout=10) as conn:
        welcome = json.loads(await asyncio.wait_for(conn.recv(), 10))
        assert welcome["type"] == "session_joined"
    assert (await settled.request({"type": "ping"}))["type"] == "pong"
    # And 127.0.0.1 may connect again once it slowed down.
    await asyncio.sleep(1.0)
    again = await connect(hub.ws_url, token(_user()))
    await again.close()
    await settled.close()


async def test_metrics_labels_never_take_a_client_chosen_value(hub_factory: HubFactory) -> None:
    hub = hub_factory().start()
    ws = await connect(hub.ws_url, token(_user()))
    marker = f"zz{uuid.uuid4().hex}"
    await ws.send({"type": marker, "requestId": "a"})
    assert (await ws.recv_until(lambda f: f.get("requestId") == "a"))["code"] == "unknown_type"
    result = await ws.request(
        {
            "type": "client_tool_call",
            "client_tool_call": {"tool_name": marker, "tool_call_id": marker, "parameters": {}},
        }
    )
    assert result["type"] == "client_tool_result" and result["is_error"]
    await ws.send({"type": "ping", marker: marker})
    await ws.recv_type("pong")
    await connect(hub.ws_url, marker, expect_welcome=False)
    async with httpx.AsyncClient(base_url=hub.base_url) as http:
        text = (await http.get("/metrics")).text
    assert marker not in text
    assert 'companion_tool_calls_total{outcome="not_found",tool="unknown"}' in text
    await ws.close()
