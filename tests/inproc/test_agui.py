"""``GET /sessions/{id}/ag-ui`` on the in-process hub (docs/protocol.md section 13): every
event validates against the official ``ag_ui.core`` models, the STATE_SNAPSHOT and the
STATE_DELTAs (applied with ``jsonpatch``) rebuild the hub's state, ``Last-Event-ID``
resumes, and only those who may read the session may follow it (the hub's shutdown, a
reader behind on a real socket and the ElevenLabs bridge: tests/integration/test_agui.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from tests.support.agui import Reader, is_custom
from tests.support.frames import new_user
from tests.support.hub import token
from tests.support.inproc import BASE_URL, InProcessHub, InProcessWS, StreamingASGITransport


@asynccontextmanager
async def _streaming(hub: InProcessHub) -> AsyncIterator[httpx.AsyncClient]:
    """A client whose responses stream as the app sends them (an SSE stream never ends
    on its own)."""
    transport = StreamingASGITransport(hub.app)
    async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as http:
        yield http


@asynccontextmanager
async def follow(
    hub: InProcessHub, sid: str, user: str, headers: dict[str, str] | None = None, **params: Any
) -> AsyncIterator[Reader]:
    auth = {"Authorization": f"Bearer {token(user)}", **(headers or {})}
    async with (
        _streaming(hub) as http,
        http.stream("GET", f"/sessions/{sid}/ag-ui", headers=auth, params=params) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Reader(response.aiter_lines())


async def _state(hub: InProcessHub, sid: str, user: str) -> Any:
    reply = await hub.http.get(
        f"/sessions/{sid}/state", headers={"Authorization": f"Bearer {token(user)}"}
    )
    assert reply.status_code == 200
    return reply.json()["state"]


async def _agent(hub: InProcessHub, user: str, sid: str | None = None) -> InProcessWS:
    return await hub.connect(token(user), session_id=sid, client="agent")


async def _mark(ws: InProcessWS, text: str) -> None:
    await ws.send({"type": "contextual_update", "text": text, "data": {}})


async def _conversation(ws: InProcessWS) -> None:
    """A scripted stretch of conversation: partials, a correction, steps, state
    changes of every kind (add, replace, remove, nested), a tool run."""
    script: list[dict[str, Any]] = [
        {"type": "agent_state", "state": "listening"},
        {
            "type": "transcript",
            "role": "user",
            "message_id": "u1",
            "text": "Ship a",
            "final": False,
        },
        {
            "type": "transcript",
            "role": "user",
            "message_id": "u1",
            "text": "Ship a box",
            "final": True,
        },
        {"type": "step", "step_id": "st1", "name": "intent recognition", "status": "started"},
        {"type": "update_session_state", "key": "ui.current_step", "value": "quote"},
        {"type": "step", "step_id": "st1", "name": "intent recognition", "status": "done"},
        {"type": "agent_state", "state": "speaking"},
        {
            "type": "transcript",
            "role": "agent",
            "message_id": "a1",
            "text": "Sure, the",
            "final": False,
        },
        {
            "type": "transcript",
            "role": "agent",
            "message_id": "a1",
            "text": "Sure, the rates",
            "final": True,
        },
        {"type": "transcript", "role": "agent", "message_id": "a1", "text": "Sure", "final": True},
        {"type": "update_session_state", "patch": {"ui": {"scroll": 3, "x/y": {"a~b": [1, 2]}}}},
        {"type": "update_session_state", "patch": {"ui": {"current_step": None}, "note": "n"}},
        {
            "type": "client_tool_call",
            "client_tool_call": {
                "tool_name": "get_shipping_quotes",
                "tool_call_id": f"tc_{uuid.uuid4().hex[:8]}",
                "parameters": {"from_zip": "90210", "to_zip": "10001", "weight": 5},
            },
        },
    ]
    for frame in script:
        await ws.send(frame)


async def test_a_session_followed_live_validates_and_rebuilds_the_hubs_state(
    shared_inproc: InProcessHub,
) -> None:
    user = new_user()
    agent = await _agent(shared_inproc, user)
    sid = agent.welcome["session_id"]
    await agent.request({"type": "update_session_state", "patch": {"ui": {"current_step": "x"}}})
    await agent.send(
        {"type": "transcript", "role": "user", "message_id": "u0", "text": "hello", "final": True}
    )
    await agent.recv_type("transcript")
    async with follow(shared_inproc, sid, user) as reader:
        opening = [await reader.next() for _ in range(3)]
        assert [e["type"] for e in opening] == [
            "RUN_STARTED",
            "STATE_SNAPSHOT",
            "MESSAGES_SNAPSHOT",
        ]
        assert opening[0]["threadId"] == sid
        assert opening[1]["snapshot"] == {"ui": {"current_step": "x"}}
        assert opening[2]["messages"] == [{"id": "u0", "role": "user", "content": "hello"}]
        await _conversation(agent)
        await _mark(agent, "done")
        await reader.until(is_custom("contextual_update", "done"))
        assert reader.state == await _state(shared_inproc, sid, user)
        kinds = [e["type"] for e in reader.events]
        for expected in (
            "TEXT_MESSAGE_START",
            "TEXT_MESSAGE_CONTENT",
            "TEXT_MESSAGE_END",
            "STEP_STARTED",
            "STEP_FINISHED",
            "STATE_DELTA",
        ):
            assert expected in kinds, kinds
        # The correction of a1 replaced its text: the last snapshot says "Sure".
        snapshots = [e for e in reader.events if e["type"] == "MESSAGES_SNAPSHOT"]
        assert [m["content"] for m in snapshots[-1]["messages"] if m["id"] == "a1"] == ["Sure"]
        content = "".join(
            e["delta"]
            for e in reader.events
            if e["type"] == "TEXT_MESSAGE_CONTENT" and e["messageId"] == "u1"
        )
        assert content == "Ship a box"
        assert reader.ids == sorted(reader.ids)
        # The session ends: the run finishes and the stream ends.
        await agent.close()
        owner = await shared_inproc.connect(token(user), session_id=sid)
        await owner.send({"type": "end_session"})
        await reader.until(lambda e: e["type"] == "RUN_FINISHED")
        with pytest.raises(EOFError):
            await reader.next()
    # An ended session can still be read: the opening, then the run is over.
    async with follow(shared_inproc, sid, user) as late:
        kinds = [(await late.next())["type"] for _ in range(4)]
        assert kinds == ["RUN_STARTED", "STATE_SNAPSHOT", "MESSAGES_SNAPSHOT", "RUN_FINISHED"]
        texts = {m["id"]: m.get("content") for m in late.events[2]["messages"]}
        assert (texts["u0"], texts["u1"], texts["a1"]) == ("hello", "Ship a box", "Sure")
        with pytest.raises(EOFError):
            await late.next()


async def test_last_event_id_resumes_after_that_seq(shared_inproc: InProcessHub) -> None:
    user = new_user()
    agent = await _agent(shared_inproc, user)
    sid = agent.welcome["session_id"]
    async with follow(shared_inproc, sid, user) as first:
        for _ in range(3):
            await first.next()
        await agent.send({"type": "update_session_state", "patch": {"a": 1, "b": {"c": 2}}})
        await _mark(agent, "one")
        await first.until(is_custom("contextual_update", "one"))
    state, last_id = first.state, first.last_id
    assert state == {"a": 1, "b": {"c": 2}} and last_id is not None
    # Missed while away: a state change, a message, a step.
    await agent.send({"type": "update_session_state", "patch": {"a": None, "b": {"d": 3}}})
    await agent.send(
        {"type": "transcript", "role": "agent", "message_id": "a9", "text": "hi", "final": True}
    )
    await agent.send({"type": "step", "step_id": "s", "name": "tools", "status": "started"})
    await _mark(agent, "two")
    await agent.recv_until(lambda f: f.get("text") == "two")
    async with follow(shared_inproc, sid, user, headers={"Last-Event-ID": str(last_id)}) as again:
        again.state = state  # what this client had
        assert (await again.next())["type"] == "RUN_STARTED"
        await again.until(is_custom("contextual_update", "two"))
        kinds = [e["type"] for e in again.events]
        assert "MESSAGES_SNAPSHOT" not in kinds  # a replay, not the opening
        assert "TEXT_MESSAGE_START" in kinds and "STEP_STARTED" in kinds
        assert min(again.ids) > last_id
        assert again.state == await _state(shared_inproc, sid, user)
        # ... and live after the replay.
        await agent.send({"type": "update_session_state", "patch": {"e": [1]}})
        await _mark(agent, "three")
        await again.until(is_custom("contextual_update", "three"))
        assert again.state == await _state(shared_inproc, sid, user)
    # after_seq does the same; a seq the session never reached gets the opening again.
    async with follow(shared_inproc, sid, user, after_seq=str(last_id)) as by_query:
        by_query.state = state
        assert (await by_query.next())["type"] == "RUN_STARTED"
        await by_query.until(is_custom("contextual_update", "three"))
        assert "MESSAGES_SNAPSHOT" not in [e["type"] for e in by_query.events]
        assert by_query.state == await _state(shared_inproc, sid, user)
    async with follow(shared_inproc, sid, user, headers={"Last-Event-ID": "999999"}) as ahead:
        kinds = [(await ahead.next())["type"] for _ in range(3)]
        assert kinds == ["RUN_STARTED", "STATE_SNAPSHOT", "MESSAGES_SNAPSHOT"]
        assert ahead.state == await _state(shared_inproc, sid, user)
    await agent.close()


async def test_who_may_follow_a_session(shared_inproc: InProcessHub) -> None:
    user = new_user()
    agent = await _agent(shared_inproc, user)
    sid = agent.welcome["session_id"]
    path = f"/sessions/{sid}/ag-ui"
    http = shared_inproc.http
    assert (await http.get(path)).status_code == 401
    bad = await http.get(path, headers={"Authorization": "Bearer nope"})
    assert bad.status_code == 401 and bad.json()["error"]["code"] == "unauthorized"
    assert (await http.get(path, params={"token": "nope"})).status_code == 401
    other = {"Authorization": f"Bearer {token(new_user())}"}
    assert (await http.get(path, headers=other)).status_code == 403
    missing = await http.get(f"/sessions/nope-{uuid.uuid4().hex}/ag-ui", headers=other)
    assert missing.status_code == 404
    bad_id = {"Authorization": f"Bearer {token(user)}", "Last-Event-ID": "x"}
    assert (await http.get(path, headers=bad_id)).status_code == 400
    async with (
        _streaming(shared_inproc) as streaming,
        streaming.stream("GET", path, params={"token": token(user)}) as response,
    ):
        assert response.status_code == 200
        reader = Reader(response.aiter_lines())
        assert (await reader.next())["type"] == "RUN_STARTED"
    await agent.close()
