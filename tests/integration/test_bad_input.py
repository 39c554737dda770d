"""Bad client frames (docs/protocol.md sections 2-3, 6): each is answered with an ``error``
frame and the connection keeps working; an oversized frame is closed 1009; nothing
bad reaches the session's state or its other clients."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.support.hub import HubProcess, token
from tests.support.ws import WS, connect

NESTED = "[" * 5000 + "]" * 5000
# 950 objects deep: decodes, but would overflow the recursion of the state's merge patch.
PATCH_950 = '{"a":' * 949 + "{}" + "}" * 949

BAD_FRAMES: list[tuple[str, str | bytes, str]] = [
    ("not-json", "this is not JSON", "invalid_json"),
    ("truncated", '{"type": "ping"', "invalid_json"),
    ("invalid-utf8", b"\xff\xfe\xfd", "invalid_message"),  # a binary frame
    ("json-array", "[1, 2, 3]", "invalid_message"),
    ("json-string", '"ping"', "invalid_message"),
    ("json-null", "null", "invalid_message"),
    ("missing-type", '{"requestId": "x"}', "invalid_message"),
    ("type-not-string", '{"type": 7}', "invalid_message"),
    ("unknown-type", '{"type": "teleport"}', "unknown_type"),
    (
        "known-field-wrong-type",
        '{"type": "ping", "colour": "blue", "requestId": 5}',
        "invalid_message",
    ),
    ("last-seq-string", '{"type": "resume", "last_seq": "ten"}', "invalid_message"),
    ("text-number", '{"type": "contextual_update", "text": 5}', "invalid_message"),
    ("limit-too-big", '{"type": "get_history", "limit": 100000}', "invalid_message"),
    ("tool-call-shape", '{"type": "client_tool_call", "client_tool_call": 1}', "invalid_message"),
    ("request-id-number", '{"type": "ping", "requestId": 5}', "invalid_message"),
    (
        "request-id-too-long",
        '{"type": "ping", "requestId": "' + "r" * 129 + '"}',
        "invalid_message",
    ),
    ("binary-json", b'{"type": "ping"}', "invalid_message"),
    (
        "deeply-nested",
        '{"type": "contextual_update", "text": "x", "data": ' + NESTED + "}",
        "invalid_message",
    ),
    (
        "nested-950-deep-patch",
        '{"type": "update_session_state", "patch": {"keep": ' + PATCH_950 + "}}",
        "invalid_message",
    ),
]


def _user() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


async def _setup(hub: HubProcess) -> tuple[str, str, WS, WS]:
    user = _user()
    a = await connect(hub.ws_url, token(user))
    sid = a.welcome["session_id"]
    b = await connect(hub.ws_url, token(user), session_id=sid)
    reply = await a.request({"type": "update_session_state", "patch": {"keep": {"me": [1, 2]}}})
    assert reply["type"] == "session_state_updated"
    await b.recv_type("session_state_updated")
    return user, sid, a, b


async def _until_pong(ws: WS) -> list[dict[str, Any]]:
    """Every frame the client is sent up to and including the pong of a fresh ping."""
    rid = uuid.uuid4().hex
    await ws.send({"type": "ping", "requestId": rid})
    frames = [await ws.recv()]
    while frames[-1].get("requestId") != rid:
        frames.append(await ws.recv())
    return frames


async def _state_over_http(hub: HubProcess, user: str, sid: str) -> Any:
    async with httpx.AsyncClient(base_url=hub.base_url) as http:
        got = await http.get(
            f"/sessions/{sid}/state", headers={"Authorization": f"Bearer {token(user)}"}
        )
    assert got.status_code == 200
    return got.json()


async def test_unknown_fields_are_ignored(shared_hub: HubProcess) -> None:
    """docs/protocol.md v1.1: fields the hub does not know are ignored, at any level."""
    user, sid, a, b = await _setup(shared_hub)
    pong = await a.request({"type": "ping", "colour": "blue", "v2": {"x": [1]}})
    assert pong["type"] == "pong"
    reply = await a.request(
        {"type": "update_session_state", "key": "keep.new", "value": 1, "priority": "high"}
    )
    assert reply["type"] == "session_state_updated" and reply["version"] == 2
    assert await _state_over_http(shared_hub, user, sid) == {
        "state": {"keep": {"me": [1, 2], "new": 1}},
        "version": 2,
    }
    await a.close()
    await b.close()


@pytest.mark.parametrize(("name", "data", "code"), BAD_FRAMES, ids=[f[0] for f in BAD_FRAMES])
async def test_a_bad_frame_gets_an_error_and_the_connection_goes_on(
    shared_hub: HubProcess, name: str, data: str | bytes, code: str
) -> None:
    user, sid, a, b = await _setup(shared_hub)
    await a.conn.send(data)
    error = await a.recv()
    assert error["type"] == "error", error
    assert error["code"] == code, error
    assert error["message"] and error["session_id"] == sid and isinstance(error["timestamp"], int)
    assert "seq" not in error  # an error is a reply, not a broadcast
    pong = await a.request({"type": "ping"})
    assert pong["type"] == "pong"
    # The other client saw nothing of it and still works.
    assert [f["type"] for f in await _until_pong(b)] == ["pong"]
    assert await _state_over_http(shared_hub, user, sid) == {
        "state": {"keep": {"me": [1, 2]}},
        "version": 1,
    }
    await a.close()
    await b.close()


async def test_the_request_id_of_a_bad_frame_is_echoed_when_readable(
    shared_hub: HubProcess,
) -> None:
    _, _, a, b = await _setup(shared_hub)
    await a.send({"type": "teleport", "requestId": "t-1"})
    error = await a.recv()
    assert error["code"] == "unknown_type" and error["requestId"] == "t-1"
    await a.send({"type": "resume", "last_seq": "x", "requestId": "t-2"})
    error = await a.recv()
    assert error["code"] == "invalid_message" and error["requestId"] == "t-2"
    await a.close()
    await b.close()


async def test_a_frame_over_64_kib_is_closed_1009_and_the_rest_is_untouched(
    shared_hub: HubProcess,
) -> None:
    user, sid, a, b = await _setup(shared_hub)
    # Just under the limit is fine.
    fits = {"type": "contextual_update", "text": "big", "data": "x" * (60 * 1024)}
    reply = await a.request(fits)
    assert reply["type"] == "contextual_update" and len(reply["data"]) == 60 * 1024
    await b.recv_type("contextual_update")
    await a.send({"type": "contextual_update", "text": "huge", "data": "x" * (65 * 1024)})
    code, _ = await a.closed()
    assert code == 1009
    left = await b.recv_type("client_left")
    assert left["connection_id"] == a.welcome["connection_id"]
    pong = await b.request({"type": "ping"})
    assert pong["type"] == "pong"
    assert await _state_over_http(shared_hub, user, sid) == {
        "state": {"keep": {"me": [1, 2]}},
        "version": 1,
    }
    await b.close()


async def test_many_bad_frames_in_a_row_then_good_work(shared_hub: HubProcess) -> None:
    """Every bad frame of the table on one connection, then a real update."""
    user, sid, a, b = await _setup(shared_hub)
    for _, data, code in BAD_FRAMES:
        await a.conn.send(data)
        error = await a.recv()
        assert (error["type"], error["code"]) == ("error", code)
    reply = await a.request({"type": "update_session_state", "key": "keep.after", "value": True})
    assert reply["type"] == "session_state_updated" and reply["version"] == 2
    got = await b.recv_type("session_state_updated")
    assert got["version"] == 2 and got["patch"] == {"keep": {"after": True}}
    assert await _state_over_http(shared_hub, user, sid) == {
        "state": {"keep": {"me": [1, 2], "after": True}},
        "version": 2,
    }
    await a.close()
    await b.close()
