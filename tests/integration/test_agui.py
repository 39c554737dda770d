"""``GET /sessions/{id}/ag-ui`` on a real hub (docs/protocol.md section 13): open streams
end cleanly at the hub's shutdown, a reader that falls behind on a real socket is cut
off and resumes, and a voice conversation through the ElevenLabs bridge reads as AG-UI.
The stream's rules (validation, state rebuilt, Last-Event-ID, who may follow) are
tested in process: tests/inproc/test_agui.py."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest

from tests.support.agui import Reader, is_custom
from tests.support.fake_elevenlabs import FakeElevenLabs
from tests.support.frames import new_user
from tests.support.hub import HubFactory, HubProcess, token
from tests.support.ws import WS, connect


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


# Needs a process: SIGTERM to the hub, and uvicorn's shutdown waiting on open responses.
async def test_the_hubs_shutdown_ends_open_streams_instead_of_cutting_them(
    hub_factory: HubFactory,
) -> None:
    """uvicorn waits for open responses before it shuts down: an open stream must end
    (a complete response) as soon as SIGTERM comes, not be cut when the shutdown's time
    runs out (which the reader would see as a broken response)."""
    hub = hub_factory().start()
    user = new_user()
    agent = await _agent(hub, user)
    sid = agent.welcome["session_id"]
    async with follow(hub, sid, user) as reader:
        await reader.until(lambda e: e["type"] == "RUN_STARTED")
        hub.signal(signal.SIGTERM)
        with pytest.raises(EOFError):  # the response ended: no error, no cut
            await reader.until(lambda e: False, timeout=30)
    assert hub.wait() == 0
    await agent.close()


# Needs a real socket: the reader falls behind once the TCP buffers before the hub's queue fill.
async def test_a_reader_that_falls_behind_is_cut_off_and_resumes(shared_hub: HubProcess) -> None:
    """Live events wait for a reader in a bounded queue (COMPANION_SEND_QUEUE_BYTES):
    one that stops reading while the session floods gets RUN_ERROR too_slow, and the
    stream ends; it resumes with Last-Event-ID, missing nothing."""
    user = new_user()
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
        await again.until(is_custom("contextual_update", "n199"), timeout=60)
    rest = [e["value"]["text"] for e in again.events if e["type"] == "CUSTOM"]
    assert seen + rest == [f"n{i}" for i in range(200)]
    await agent.close()


# Needs a real port: the bridge dials the hub (and the fake ElevenLabs server) over websockets.
async def test_a_voice_conversation_through_the_bridge_reads_as_ag_ui(
    shared_hub: HubProcess,
) -> None:
    """The real SDK through the bridge against the local ElevenLabs-protocol server:
    what the user and the agent say, the correction of an interrupted answer and a tool
    run reach an AG-UI reader, every event valid, the state rebuilt."""
    user = new_user()
    owner = await connect(shared_hub.ws_url, token(user))
    sid = owner.welcome["session_id"]
    async with FakeElevenLabs() as fake, follow(shared_hub, sid, user) as reader:
        for _ in range(3):
            await reader.next()
        bridge = fake.bridge(shared_hub.ws_url, sid, token(user))
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
            lambda e: is_custom("agent_state")(e) and e["value"]["state"] == "idle", timeout=20
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
