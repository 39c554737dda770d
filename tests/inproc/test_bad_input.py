"""Bad client frames (docs/protocol.md sections 2-3, 6), on the in-process hub: each is
answered with an ``error`` frame and the connection keeps working; nothing bad reaches
the session's state or its other clients. (An oversized frame, closed 1009 by the
server's frame limit: tests/integration/test_bad_input.py.)"""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support.frames import new_user
from tests.support.hub import token
from tests.support.inproc import InProcessHub, InProcessWS

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


async def _setup(hub: InProcessHub) -> tuple[str, str, InProcessWS, InProcessWS]:
    user = new_user()
    a = await hub.connect(token(user))
    sid = a.welcome["session_id"]
    b = await hub.connect(token(user), session_id=sid)
    reply = await a.request({"type": "update_session_state", "patch": {"keep": {"me": [1, 2]}}})
    assert reply["type"] == "session_state_updated"
    await b.recv_type("session_state_updated")
    return user, sid, a, b


async def _until_pong(ws: InProcessWS) -> list[dict[str, Any]]:
    """Every frame the client is sent up to and including the pong of a fresh ping."""
    rid = uuid.uuid4().hex
    await ws.send({"type": "ping", "requestId": rid})
    frames = [await ws.recv()]
    while frames[-1].get("requestId") != rid:
        frames.append(await ws.recv())
    return frames


async def _state_over_http(hub: InProcessHub, user: str, sid: str) -> Any:
    got = await hub.http.get(
        f"/sessions/{sid}/state", headers={"Authorization": f"Bearer {token(user)}"}
    )
    assert got.status_code == 200
    return got.json()


async def test_unknown_fields_are_ignored(shared_inproc: InProcessHub) -> None:
    """docs/protocol.md v1.1: fields the hub does not know are ignored, at any level."""
    user, sid, a, b = await _setup(shared_inproc)
    pong = await a.request({"type": "ping", "colour": "blue", "v2": {"x": [1]}})
    assert pong["type"] == "pong"
    reply = await a.request(
        {"type": "update_session_state", "key": "keep.new", "value": 1, "priority": "high"}
    )
    assert reply["type"] == "session_state_updated" and reply["version"] == 2
    assert await _state_over_http(shared_inproc, user, sid) == {
        "state": {"keep": {"me": [1, 2], "new": 1}},
        "version": 2,
    }
    await a.close()
    await b.close()


@pytest.mark.parametrize(("name", "data", "code"), BAD_FRAMES, ids=[f[0] for f in BAD_FRAMES])
async def test_a_bad_frame_gets_an_error_and_the_connection_goes_on(
    shared_inproc: InProcessHub, name: str, data: str | bytes, code: str
) -> None:
    user, sid, a, b = await _setup(shared_inproc)
    await a.send(data)
    error = await a.recv()
    assert error["type"] == "error", error
    assert error["code"] == code, error
    assert error["message"] and error["session_id"] == sid and isinstance(error["timestamp"], int)
    assert "seq" not in error  # an error is a reply, not a broadcast
    pong = await a.request({"type": "ping"})
    assert pong["type"] == "pong"
    # The other client saw nothing of it and still works.
    assert [f["type"] for f in await _until_pong(b)] == ["pong"]
    assert await _state_over_http(shared_inproc, user, sid) == {
        "state": {"keep": {"me": [1, 2]}},
        "version": 1,
    }
    await a.close()
    await b.close()


async def test_the_request_id_of_a_bad_frame_is_echoed_when_readable(
    shared_inproc: InProcessHub,
) -> None:
    _, _, a, b = await _setup(shared_inproc)
    await a.send({"type": "teleport", "requestId": "t-1"})
    error = await a.recv()
    assert error["code"] == "unknown_type" and error["requestId"] == "t-1"
    await a.send({"type": "resume", "last_seq": "x", "requestId": "t-2"})
    error = await a.recv()
    assert error["code"] == "invalid_message" and error["requestId"] == "t-2"
    await a.close()
    await b.close()


async def test_many_bad_frames_in_a_row_then_good_work(shared_inproc: InProcessHub) -> None:
    """Every bad frame of the table on one connection, then a real update."""
    user, sid, a, b = await _setup(shared_inproc)
    for _, data, code in BAD_FRAMES:
        await a.send(data)
        error = await a.recv()
        assert (error["type"], error["code"]) == ("error", code)
    reply = await a.request({"type": "update_session_state", "key": "keep.after", "value": True})
    assert reply["type"] == "session_state_updated" and reply["version"] == 2
    got = await b.recv_type("session_state_updated")
    assert got["version"] == 2 and got["patch"] == {"keep": {"after": True}}
    assert await _state_over_http(shared_inproc, user, sid) == {
        "state": {"keep": {"me": [1, 2], "after": True}},
        "version": 2,
    }
    await a.close()
    await b.close()
