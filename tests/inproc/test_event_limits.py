"""One size limit for every door (docs/protocol.md section 4, v1.2), on the in-process hub:
an event whose frame would be over ``COMPANION_MAX_EVENT_BYTES`` is refused on the socket
(``payload_too_large``), over HTTP (413) and by a tool (its error), and reaches no screen;
a state change whose broadcast would be is refused before its commit. (Over gRPC, which
needs a real port: tests/integration/test_event_limits.py.)"""

from __future__ import annotations

import json
import uuid
from typing import Any

from tests.support.frames import FrameSocket, bearer, new_user, tool_call
from tests.support.hub import token
from tests.support.inproc import InProcessHub, inprocess_hub

EVENT_LIMIT = 64 * 1024  # COMPANION_MAX_EVENT_BYTES' default
FRAME_LIMIT = 64 * 1024  # COMPANION_MAX_FRAME_BYTES' default: the socket's inbound frames
OVER = "x" * (100 * 1024)


async def _new_session(hub: InProcessHub, owner: str) -> str:
    r = await hub.http.post("/sessions", headers=bearer(owner))
    assert r.status_code == 201, r.text
    sid: str = r.json()["session_id"]
    return sid


async def _next_update(screen: FrameSocket, timeout: float = 10.0) -> dict[str, Any]:
    """The next ``contextual_update`` or state change a screen receives."""
    kinds = ("contextual_update", "session_state_updated")
    return await screen.recv_until(lambda fr: fr.get("type") in kinds, timeout)


async def _marker(hub: InProcessHub, sid: str, owner: str) -> str:
    """Publish a small event over HTTP; its text."""
    text = f"marker-{uuid.uuid4().hex[:6]}"
    r = await hub.http.post(f"/sessions/{sid}/events", json={"text": text}, headers=bearer(owner))
    assert r.status_code == 201, r.text
    return text


async def _version(hub: InProcessHub, sid: str, owner: str) -> int:
    r = await hub.http.get(f"/sessions/{sid}/state", headers=bearer(owner))
    assert r.status_code == 200, r.text
    version: int = r.json()["version"]
    return version


async def test_http_event_or_state_change_over_the_limit_is_413(
    shared_inproc: InProcessHub,
) -> None:
    hub = shared_inproc
    owner = new_user()
    sid = await _new_session(hub, owner)
    screen = await hub.connect(token(owner), session_id=sid)
    auth = bearer(owner)
    # Both bodies are under COMPANION_MAX_BODY_BYTES: the event limit refuses them.
    event = await hub.http.post(f"/sessions/{sid}/events", json={"text": OVER}, headers=auth)
    patch = await hub.http.patch(f"/sessions/{sid}/state", json={"blob": OVER}, headers=auth)
    for reply in (event, patch):
        assert reply.status_code == 413, reply.text
        assert reply.json()["error"]["code"] == "payload_too_large"
        assert reply.json()["error"]["limit"] == EVENT_LIMIT
    assert await _version(hub, sid, owner) == 0
    text = await _marker(hub, sid, owner)
    assert (await _next_update(screen))["text"] == text
    await screen.close()


def _frame_of(size: int, frame: dict[str, Any]) -> str:
    """``frame`` padded to exactly ``size`` bytes, where its text says ``PAD``."""
    raw = json.dumps({"requestId": "big", **frame})
    return raw.replace("PAD", "x" * (size - len(raw) + len("PAD")))


async def test_a_socket_event_within_the_frame_limit_but_over_the_event_limit_is_refused(
    shared_inproc: InProcessHub,
) -> None:
    hub = shared_inproc
    owner = new_user()
    sid = await _new_session(hub, owner)
    sender = await hub.connect(token(owner), session_id=sid)
    screen = await hub.connect(token(owner), session_id=sid)
    size = FRAME_LIMIT - 16  # the socket reads it (no 1009); its broadcast is larger
    for raw in (
        _frame_of(size, {"type": "contextual_update", "text": "t", "data": {"pad": "PAD"}}),
        _frame_of(size, {"type": "update_session_state", "key": "blob", "value": "PAD"}),
    ):
        assert len(raw.encode()) == size
        await sender.send(raw)
        error = await sender.recv_until(lambda fr: fr.get("requestId") == "big", 10)
        assert error["type"] == "error" and error["code"] == "payload_too_large", error
        assert error["limit"] == EVENT_LIMIT
    assert await _version(hub, sid, owner) == 0
    text = await _marker(hub, sid, owner)
    assert (await _next_update(screen))["text"] == text
    assert (await _next_update(sender))["text"] == text  # the connection goes on
    await sender.close()
    await screen.close()


async def test_a_tool_whose_effect_would_be_over_the_limit_fails_and_changes_nothing(
    db_url: str,
) -> None:
    # An event limit a shipping quote's state change (about 1.4 KB) is over, and the
    # other frames (joins, a tool run's start and finish) are not.
    async with inprocess_hub(db_url, max_event_bytes=700) as hub:
        owner = new_user()
        sid = await _new_session(hub, owner)
        ws = await hub.connect(token(owner), session_id=sid)
        call_id = f"toolu_{uuid.uuid4().hex[:12]}"
        call = tool_call(
            "get_shipping_quotes",
            {"from_zip": "10001", "to_zip": "94105", "weight": 2},
            tool_call_id=call_id,
            requestId="tool",
        )
        await ws.send(call)
        seen: list[dict[str, Any]] = []
        while not seen or seen[-1]["type"] not in ("client_tool_result", "error"):
            seen.append(await ws.recv_until(lambda fr: fr.get("requestId") == "tool", 10))
        reply = seen[-1]
        assert reply["type"] == "client_tool_result" and reply["is_error"] is True, reply
        assert "COMPANION_MAX_EVENT_BYTES" in json.loads(reply["result"])["error"]
        # The run is framed as every run is; no state change, no update in between.
        assert [fr["type"] for fr in seen[:-1]] == ["tool_call_started", "tool_call_finished"]
        assert seen[1]["tool_call_id"] == call_id and seen[1]["is_error"] is True
        assert await _version(hub, sid, owner) == 0  # no quotes, no task
        await ws.close()
