"""``GET /sessions/{id}/ag-ui`` on a real hub (docs/protocol.md section 13): every event
validates against the official ``ag_ui.core`` models, the STATE_SNAPSHOT and the
STATE_DELTAs (applied with ``jsonpatch``) rebuild the hub's state, ``Last-Event-ID``
resumes, and only those who may read the session may follow it."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import jsonpatch
import pytest
from ag_ui.core import Event
from pydantic import TypeAdapter

from companion_ws.integrations.elevenlabs import AgentBridge, BridgeConfig
from companion_ws.tools.registry import ToolRegistry
from tests.support.fake_elevenlabs import FakeElevenLabs
from tests.support.hub import HubFactory, HubProcess, token
from tests.support.ws import WS, connect

_events: TypeAdapter[Any] = TypeAdapter(Event)


def _user() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


@dataclass
class Reader:
    """A client of the stream: each event parsed from its one ``data:`` line and
    validated with the official models; the state rebuilt from snapshot and deltas."""

    lines: AsyncIterator[str]
    events: list[dict[str, Any]] = field(default_factory=list)
    ids: list[int] = field(default_factory=list)
    state: Any = None
    last_id: int | None = None
    closed: bool = False

    async def next(self, timeout: float = 10.0) -> dict[str, Any]:
        async with asyncio.timeout(timeout):
            data: list[str] = []
            event_id: int | None = None
            async for line in self.lines:
                if line == "":
                    if not data:
                        continue
                    assert len(data) == 1, data  # each event is one data: line
                    event: dict[str, Any] = json.loads(data[0])
                    _events.validate_python(event)
                    self._apply(event)
                    if event_id is not None:
                        self.ids.append(event_id)
                        self.last_id = event_id
                    self.events.append(event)
                    return event
                if line.startswith(":"):
                    continue
                name, _, value = line.partition(": ")
                if name == "id":
                    event_id = int(value)
                elif name == "data":
                    data.append(value)
                else:
                    raise AssertionError(f"unexpected SSE line {line!r}")
            self.closed = True
            raise EOFError("the stream ended")

    async def until(self, predicate: Any, timeout: float = 10.0) -> dict[str, Any]:
        while True:
            event = await self.next(timeout)
            if predicate(event):
                return event

    def _apply(self, event: dict[str, Any]) -> None:
        if event["type"] == "STATE_SNAPSHOT":
            self.state = event["snapshot"]
        elif event["type"] == "STATE_DELTA":
            self.state = jsonpatch.apply_patch(self.state, event["delta"])


@asynccontextmanager
async def follow(
    hub: HubProcess, sid: str, user: str, headers: dict[str, str] | None = None, **params: Any
) -> AsyncIterator[Reader]:
    auth = {"Authorization": f"Bearer {token(user)}", **(headers or {})}
    timeout = httpx.Timeout(10.0, read=None)
    async with (
        httpx.AsyncClient(base_url=hub.base_url, timeout=timeout) as http,
        http.stream("GET", f"/sessions/{sid}/ag-ui", headers=auth, params=params) as response,
    ):
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield Reader(response.aiter_lines())


async def _state(hub: HubProcess, sid: str, user: str) -> Any:
    async with httpx.AsyncClient(base_url=hub.base_url) as http:
        reply = await http.get(
            f"/sessions/{sid}/state", headers={"Authorization": f"Bearer {token(user)}"}
        )
    assert reply.status_code == 200
    return reply.json()["state"]


async def _agent(hub: HubProcess, user: str, sid: str | None = None) -> WS:
    return await connect(hub.ws_url, token(user), session_id=sid, client="agent")


async def _say(ws: WS, frame: dict[str, Any]) -> None:
    await ws.send(frame)


def _is_custom(name: str, text: str | None = None) -> Any:
    def match(event: dict[str, Any]) -> bool:
        return (
            event["type"] == "CUSTOM"
            and event["name"] == name
            and (text is None or event["value"].get("text") == text)
        )

    return match


async def _mark(ws: WS, text: str) -> None:
    await ws.send({"type": "contextual_update", "text": text, "data": {}})


async def _conversation(ws: WS) -> None:
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
    shared_hub: HubProcess,
) -> None:
    user = _user()
    agent = await _agent(shared_hub, user)
    sid = agent.welcome["session_id"]
    await agent.request({"type": "update_session_state", "patch": {"ui": {"current_step": "x"}}})
    await agent.send(
        {"type": "transcript", "role": "user", "message_id": "u0", "text": "hello", "final": True}
    )
    await agent.recv_type("transcript")
    async with follow(shared_hub, sid, user) as reader:
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
        await reader.until(_is_custom("contextual_update", "done"))
        assert reader.state == await _state(shared_hub, sid, user)
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
        owner = await connect(shared_hub.ws_url, token(user), session_id=sid)
        await owner.send({"type": "end_session"})
        await reader.until(lambda e: e["type"] == "RUN_FINISHED")
        with pytest.raises(EOFError):
            await reader.next()
    # An ended session can still be read: the opening, then the run is over.
    async with follow(shared_hub, sid, user) as late:
        kinds = [(await late.next())["type"] for _ in range(4)]
        assert kinds == ["RUN_STARTED", "STATE_SNAPSHOT", "MESSAGES_SNAPSHOT", "RUN_FINISHED"]
        texts = {m["id"]: m.get("content") for m in late.events[2]["messages"]}
        assert (texts["u0"], texts["u1"], texts["a1"]) == ("hello", "Ship a box", "Sure")
        with pytest.raises(EOFError):
            await late.next()


async def test_last_event_id_resumes_after_that_seq(shared_hub: HubProcess) -> None:
    user = _user()
    agent = await _agent(shared_hub, user)
    sid = agent.welcome["session_id"]
    async with follow(shared_hub, sid, user) as first:
        for _ in range(3):
            await first.next()
        await agent.send({"type": "update_session_state", "patch": {"a": 1, "b": {"c": 2}}})
        await _mark(agent, "one")
        await first.until(_is_custom("contextual_update", "one"))
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
    async with follow(shared_hub, sid, user, headers={"Last-Event-ID": str(last_id)}) as again:
        again.state = state  # what this client had
        assert (await again.next())["type"] == "RUN_STARTED"
        await again.until(_is_custom("contextual_update", "two"))
        kinds = [e["type"] for e in again.events]
        assert "MESSAGES_SNAPSHOT" not in kinds  # a replay, not the opening
        assert "TEXT_MESSAGE_START" in kinds and "STEP_STARTED" in kinds
        assert min(again.ids) > last_id
        assert again.state == await _state(shared_hub, sid, user)
        # ... and live after the replay.
        await agent.send({"type": "update_session_state", "patch": {"e": [1]}})
        await _mark(agent, "three")
        await again.until(_is_custom("contextual_update", "three"))
        assert again.state == await _state(shared_hub, sid, user)
    # after_seq does the same; a seq the session never reached gets the opening again.
    async with follow(shared_hub, sid, user, after_seq=str(last_id)) as by_query:
        by_query.state = state
        assert (await by_query.next())["type"] == "RUN_STARTED"
        await by_query.until(_is_custom("contextual_update", "three"))
        assert "MESSAGES_SNAPSHOT" not in [e["type"] for e in by_query.events]
        assert by_query.state == await _state(shared_hub, sid, user)
    async with follow(shared_hub, sid, user, headers={"Last-Event-ID": "999999"}) as ahead:
        kinds = [(await ahead.next())["type"] for _ in range(3)]
        assert kinds == ["RUN_STARTED", "STATE_SNAPSHOT", "MESSAGES_SNAPSHOT"]
        assert ahead.state == await _state(shared_hub, sid, user)
    await agent.close()


async def test_the_hubs_shutdown_ends_open_streams_instead_of_cutting_them(
    hub_factory: HubFactory,
) -> None:
    """uvicorn waits for open responses before it shuts down: an open stream must end
    (a complete response) as soon as SIGTERM comes, not be cut when the shutdown's time
    runs out (which the reader would see as a broken response)."""
    hub = hub_factory().start()
    user = _user()
    agent = await _agent(hub, user)
    sid = agent.welcome["session_id"]
    async with follow(hub, sid, user) as reader:
        await reader.until(lambda e: e["type"] == "RUN_STARTED")
        hub.signal(signal.SIGTERM)
        with pytest.raises(EOFError):  # the response ended: no error, no cut
            await reader.until(lambda e: False, timeout=30)
    assert hub.wait() == 0
    await agent.close()


async def test_who_may_follow_a_session(shared_hub: HubProcess) -> None:
    user = _user()
    agent = await _agent(shared_hub, user)
    sid = agent.welcome["session_id"]
    path = f"/sessions/{sid}/ag-ui"
    async with httpx.AsyncClient(base_url=shared_hub.base_url) as http:
        assert (await http.get(path)).status_code == 401
        bad = await http.get(path, headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401 and bad.json()["error"]["code"] == "unauthorized"
        assert (await http.get(path, params={"token": "nope"})).status_code == 401
        other = {"Authorization": f"Bearer {token(_user())}"}
        assert (await http.get(path, headers=other)).status_code == 403
        missing = await http.get(f"/sessions/nope-{uuid.uuid4().hex}/ag-ui", headers=other)
        assert missing.status_code == 404
        bad_id = {"Authorization": f"Bearer {token(user)}", "Last-Event-ID": "x"}
        assert (await http.get(path, headers=bad_id)).status_code == 400
        async with http.stream("GET", path, params={"token": token(user)}) as response:
            assert response.status_code == 200
            reader = Reader(response.aiter_lines())
            assert (await reader.next())["type"] == "RUN_STARTED"
    await agent.close()


async def test_a_reader_that_falls_behind_is_cut_off_and_resumes(shared_hub: HubProcess) -> None:
    """Live events wait for a reader in a bounded queue (COMPANION_SEND_QUEUE_BYTES):
    one that stops reading while the session floods gets RUN_ERROR too_slow, and the
    stream ends; it resumes with Last-Event-ID, missing nothing."""
    user = _user()
    agent = await _agent(shared_hub, user)
    sid = agent.welcome["session_id"]
    auth = {"Authorization": f"Bearer {token(user)}"}
    blob = "x" * 60_000
    async with follow(shared_hub, sid, user) as reader:
        for _ in range(3):
            await reader.next()
        async with httpx.AsyncClient(base_url=shared_hub.base_url, timeout=30) as http:
            for i in range(200):  # 12 MB: past the socket buffers and the 1 MiB queue
                reply = await http.post(
                    f"/sessions/{sid}/events", headers=auth, json={"text": f"n{i}", "data": blob}
                )
                assert reply.status_code == 201, reply.text
        last = await reader.until(lambda e: e["type"] == "RUN_ERROR", timeout=60)
        assert last["code"] == "too_slow"
        with pytest.raises(EOFError):
            await reader.next()
    seen = [e["value"]["text"] for e in reader.events if e["type"] == "CUSTOM"]
    assert 0 < len(seen) < 200 and seen == [f"n{i}" for i in range(len(seen))]
    assert reader.last_id is not None
    headers = {"Last-Event-ID": str(reader.last_id)}
    async with follow(shared_hub, sid, user, headers=headers) as again:
        await again.until(_is_custom("contextual_update", "n199"), timeout=60)
    rest = [e["value"]["text"] for e in again.events if e["type"] == "CUSTOM"]
    assert seen + rest == [f"n{i}" for i in range(200)]
    await agent.close()


async def test_a_voice_conversation_through_the_bridge_reads_as_ag_ui(
    shared_hub: HubProcess,
) -> None:
    """The real SDK through the bridge against the local ElevenLabs-protocol server:
    what the user and the agent say, the correction of an interrupted answer and a tool
    run reach an AG-UI reader, every event valid, the state rebuilt."""
    user = _user()
    owner = await connect(shared_hub.ws_url, token(user))
    sid = owner.welcome["session_id"]
    async with FakeElevenLabs() as fake, follow(shared_hub, sid, user) as reader:
        for _ in range(3):
            await reader.next()
        config = BridgeConfig(
            agent_id=fake.agent_id,
            session_id=sid,
            hub_url=shared_hub.ws_url,
            token=token(user),
            api_key=fake.api_key,
            base_url=fake.base_url,
            keepalive=0,
        )
        bridge = AgentBridge(config, ToolRegistry.from_modules(["companion_ws.tools.shipping"]))
        task = asyncio.create_task(bridge.run())
        conv = await fake.conversation()
        await conv.user_said("Ship a 5 lb box from 90210 to 10001")
        spoken = "USPS is twelve eighty and FedEx is"
        await conv.say(spoken)
        await conv.send({"type": "interruption", "interruption_event": {"event_id": 5}})
        await conv.send(
            {
                "type": "agent_response_correction",
                "agent_response_correction_event": {
                    "original_agent_response": spoken,
                    "corrected_agent_response": "USPS is twelve eighty",
                    "event_id": 6,
                },
            }
        )
        params = {"from_zip": "90210", "to_zip": "10001", "weight": 5, "session_id": sid}
        call_id = await conv.call_tool("get_shipping_quotes", params)
        assert (await conv.tool_result(call_id))["is_error"] is False
        bridge.stop()
        assert await asyncio.wait_for(task, 15) == "stopped"
        # The bridge's last frame, published as it leaves: the agent is idle.
        await reader.until(
            lambda e: _is_custom("agent_state")(e) and e["value"]["state"] == "idle", timeout=20
        )
        assert reader.state == await _state(shared_hub, sid, user)
        assert "quotes" in reader.state
        states = [
            e["value"]["state"]
            for e in reader.events
            if e["type"] == "CUSTOM" and e["name"] == "agent_state"
        ]
        assert states == ["listening", "thinking", "speaking", "listening", "thinking", "idle"]
        snapshot = [e for e in reader.events if e["type"] == "MESSAGES_SNAPSHOT"][-1]
        said = [(m["role"], m.get("content")) for m in snapshot["messages"]]
        assert said[:2] == [
            ("user", "Ship a 5 lb box from 90210 to 10001"),
            ("assistant", "USPS is twelve eighty"),
        ]
    await owner.close()
