"""The ElevenLabs bridge end to end: a real hub, real UI sockets, the real ``elevenlabs``
SDK (unpatched) pointed by ``base_url`` at a local ElevenLabs-protocol server.

agent -> screens (a tool call reaches every screen), screens -> agent (a selection made
on a screen is told to the agent), and resume (a restarted bridge, or a bridge back on
a hub that lost its history, first tells the agent where the session stands).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, BinaryIO

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from companion_ws.client import CompanionClient, Deliver
from companion_ws.integrations.elevenlabs import (
    AgentBridge,
    BridgeConfig,
    BridgeError,
    describe_update,
)
from companion_ws.integrations.narrator import Narrator
from companion_ws.integrations.voice_holder import run_holding
from companion_ws.tools.registry import ToolRegistry
from tests.support.fake_elevenlabs import FakeConversation, FakeElevenLabs
from tests.support.hub import HubFactory, HubProcess, token, tokens
from tests.support.ws import WS, connect
from ui_state import create_session_context

QUOTE_PARAMS = {"from_zip": "90210", "to_zip": "10001", "weight": 5}


def _user() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def fake() -> AsyncIterator[FakeElevenLabs]:
    async with FakeElevenLabs() as server:
        yield server


class Running:
    """A bridge running in this process, and the conversation it opened."""

    def __init__(self, bridge: AgentBridge, task: asyncio.Task[str], conv: FakeConversation):
        self.bridge = bridge
        self.task = task
        self.conv = conv

    async def stop(self) -> str:
        self.bridge.stop()
        return await asyncio.wait_for(self.task, 15)


async def start_bridge(
    hub: HubProcess, fake: FakeElevenLabs, sid: str, tok: str, **options: Any
) -> Running:
    bridge = fake.bridge(hub.ws_url, sid, tok, **options)
    task = asyncio.create_task(bridge.run())
    conv_task = asyncio.create_task(fake.conversation())
    done, _ = await asyncio.wait({task, conv_task}, return_when="FIRST_COMPLETED")
    if task in done:
        conv_task.cancel()
        raise AssertionError(f"the bridge ended before its conversation: {task.result()!r}")
    return Running(bridge, task, conv_task.result())


async def get_state(hub: HubProcess, sid: str, tok: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=hub.base_url) as http:
        reply = await http.get(f"/sessions/{sid}/state", headers={"Authorization": f"Bearer {tok}"})
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def screens(hub: HubProcess, tok: str, n: int = 2) -> tuple[str, list[WS]]:
    first = await connect(hub.ws_url, tok)
    sid = first.welcome["session_id"]
    rest = [await connect(hub.ws_url, tok, session_id=sid) for _ in range(n - 1)]
    return sid, [first, *rest]


async def test_an_agent_tool_call_reaches_every_screen_and_the_state(
    shared_hub: HubProcess, fake: FakeElevenLabs
) -> None:
    tok = token(_user())
    sid, uis = await screens(shared_hub, tok)
    run = await start_bridge(shared_hub, fake, sid, tok)
    conv = run.conv
    assert tokens.verify_capability(conv.dynamic_variables["session_id"]).session_scope == sid
    assert conv.query["agent_id"] == fake.agent_id

    call_id = await conv.call_tool("get_shipping_quotes", {**QUOTE_PARAMS, "session_id": sid})
    result = await conv.tool_result(call_id)
    assert result["is_error"] is False
    assert isinstance(result["result"], str)  # a JSON string, as the protocol wants
    body = json.loads(result["result"])
    quotes = body["quotes"]
    assert len(quotes) == 5 and body["shipping_details"] == {
        "from": "90210",
        "to": "10001",
        "weight_lbs": 5,
    }

    for ui in uis:
        update = await ui.recv_until(
            lambda f: f["type"] == "contextual_update" and f["text"] == "quote_ready"
        )
        assert update["data"]["quotes"] == quotes
        assert update["sender"] == run.bridge.hub.connection_id  # type: ignore[union-attr]
    state = await get_state(shared_hub, sid, tok)
    assert state["state"]["quotes"] == quotes and state["version"] == 1

    assert await run.stop() == "stopped"
    await asyncio.wait_for(conv.closed.wait(), 10)
    # The agent was never told about its own tool call.
    assert conv.sent("contextual_update") == []
    for ui in uis:
        await ui.close()


async def test_a_selection_on_a_screen_is_told_to_the_agent(
    shared_hub: HubProcess, fake: FakeElevenLabs
) -> None:
    tok = token(_user())
    sid, (ui,) = await screens(shared_hub, tok, 1)
    run = await start_bridge(shared_hub, fake, sid, tok)
    call_id = await run.conv.call_tool("get_shipping_quotes", {**QUOTE_PARAMS, "session_id": sid})
    quotes = json.loads((await run.conv.tool_result(call_id))["result"])["quotes"]
    fedex = next(q for q in quotes if q["carrier"] == "FedEx" and q["service"] == "Ground")

    reply = await ui.request(
        {"type": "update_session_state", "key": "selected_option", "value": fedex}
    )
    assert reply["type"] == "session_state_updated", reply
    told = await run.conv.next("contextual_update")
    assert told["text"] == (
        f"On screen, the user selected FedEx Ground for ${fedex['cost']:.2f}, {fedex['days']} days."
    )

    # A screen's own contextual_update reaches the agent in words, too.
    await ui.request({"type": "contextual_update", "text": "user_opened_help", "data": None})
    told = await run.conv.next("contextual_update")
    assert told == {"type": "contextual_update", "text": "Update from the screen: user_opened_help"}
    assert await run.stop() == "stopped"
    await ui.close()


def _is(kind: str, **fields: Any) -> Any:
    return lambda f: f["type"] == kind and all(f.get(k) == v for k, v in fields.items())


async def test_what_the_agent_and_the_user_say_reaches_the_screens(
    shared_hub: HubProcess, fake: FakeElevenLabs
) -> None:
    tok = token(_user())
    sid, (ui,) = await screens(shared_hub, tok, 1)
    run = await start_bridge(shared_hub, fake, sid, tok)
    await ui.recv_until(_is("agent_state", state="listening"))  # the agent is ready
    await run.conv.user_said("Ship a 5 lb box to New York")
    await run.conv.say("Let me get you some quotes.")
    heard = await ui.recv_until(_is("transcript", role="user"))
    assert heard["text"] == "Ship a 5 lb box to New York" and heard["final"] is True
    assert heard["sender"] == run.bridge.hub.connection_id  # type: ignore[union-attr]
    await ui.recv_until(_is("agent_state", state="thinking"))
    await ui.recv_until(_is("agent_state", state="speaking"))
    said = await ui.recv_until(_is("transcript", role="agent"))
    assert said["text"] == "Let me get you some quotes." and said["final"] is True
    assert said["message_id"] != heard["message_id"]
    assert await run.stop() == "stopped"
    await ui.recv_until(_is("agent_state", state="idle"))  # it left
    await ui.close()


async def test_an_interrupted_answer_is_corrected_in_place_and_the_states_follow(
    shared_hub: HubProcess, fake: FakeElevenLabs
) -> None:
    tok = token(_user())
    sid, (ui,) = await screens(shared_hub, tok, 1)
    run = await start_bridge(shared_hub, fake, sid, tok)
    conv = run.conv
    await ui.recv_until(_is("agent_state", state="listening"))
    for partial in ("Ship a", "Ship a box"):  # the SDK has no callback for these
        await conv.send(
            {
                "type": "tentative_user_transcript",
                "tentative_user_transcription_event": {"user_transcript": partial, "event_id": 1},
            }
        )
    await conv.user_said("Ship a box to New York")
    first = await ui.recv_until(_is("transcript", role="user"))
    assert (first["text"], first["final"]) == ("Ship a", False)
    second = await ui.recv_until(_is("transcript", role="user"))
    final = await ui.recv_until(_is("transcript", role="user"))
    assert second["message_id"] == final["message_id"] == first["message_id"]
    assert (final["text"], final["final"]) == ("Ship a box to New York", True)

    spoken = "The cheapest is USPS at twelve dollars and eighty cents"
    await conv.say(spoken)
    answer = await ui.recv_until(_is("transcript", role="agent"))
    await conv.send({"type": "interruption", "interruption_event": {"event_id": 9}})
    await ui.recv_until(_is("agent_state", state="listening"))
    await conv.send(
        {
            "type": "agent_response_correction",
            "agent_response_correction_event": {
                "original_agent_response": spoken,
                "corrected_agent_response": "The cheapest is USPS",
                "event_id": 10,
            },
        }
    )
    fixed = await ui.recv_until(_is("transcript", role="agent"))
    assert fixed["message_id"] == answer["message_id"]
    assert (fixed["text"], fixed["final"]) == ("The cheapest is USPS", True)

    # A tool call: the agent is thinking while the hub runs it.
    await conv.user_said("Get me quotes")
    await conv.say("One moment.")
    await ui.recv_until(_is("agent_state", state="speaking"))
    call_id = await conv.call_tool("get_shipping_quotes", {**QUOTE_PARAMS, "session_id": sid})
    assert (await conv.tool_result(call_id))["is_error"] is False
    await ui.recv_until(_is("agent_state", state="thinking"))
    assert await run.stop() == "stopped"
    await ui.close()


async def test_no_transcripts_keeps_the_words_off_the_screens_but_not_the_state(
    shared_hub: HubProcess, fake: FakeElevenLabs
) -> None:
    tok = token(_user())
    sid, (ui,) = await screens(shared_hub, tok, 1)
    run = await start_bridge(shared_hub, fake, sid, tok, forward_transcripts=False)
    await run.conv.user_said("a secret")
    await run.conv.say("noted")
    await ui.recv_until(_is("agent_state", state="speaking"))
    assert await run.stop() == "stopped"
    async with httpx.AsyncClient(base_url=shared_hub.base_url) as http:
        history = await http.get(
            f"/sessions/{sid}/history", headers={"Authorization": f"Bearer {tok}"}
        )
    kinds = [e["type"] for e in history.json()["events"]]
    assert "transcript" not in kinds and "agent_state" in kinds
    await ui.close()


async def test_the_same_tool_call_id_from_the_agent_runs_once(
    shared_hub: HubProcess, fake: FakeElevenLabs
) -> None:
    tok = token(_user())
    sid, (ui,) = await screens(shared_hub, tok, 1)
    run = await start_bridge(shared_hub, fake, sid, tok)
    params = {**QUOTE_PARAMS, "session_id": sid}
    await run.conv.call_tool("get_shipping_quotes", params, tool_call_id="toolu_twice")
    first = await run.conv.tool_result("toolu_twice")
    await run.conv.call_tool("get_shipping_quotes", params, tool_call_id="toolu_twice")
    second = await run.conv.wait_for(
        lambda m: m.get("type") == "client_tool_result" and m is not first
    )
    assert first == second
    assert (await get_state(shared_hub, sid, tok))["version"] == 1
    assert await run.stop() == "stopped"
    await ui.close()


async def test_bad_parameters_from_the_agent_are_an_error_result_naming_them(
    shared_hub: HubProcess, fake: FakeElevenLabs
) -> None:
    tok = token(_user())
    sid, (ui,) = await screens(shared_hub, tok, 1)
    run = await start_bridge(shared_hub, fake, sid, tok)
    call_id = await run.conv.call_tool(
        "get_shipping_quotes", {**QUOTE_PARAMS, "weight": 0, "session_id": sid}
    )
    result = await run.conv.tool_result(call_id)
    assert result["is_error"] is True
    assert "weight" in json.loads(result["result"])["error"]

    other = await run.conv.call_tool(
        "get_shipping_quotes", {**QUOTE_PARAMS, "session_id": "someone-elses-session"}
    )
    mismatch = await run.conv.tool_result(other)
    assert mismatch["is_error"] is True
    assert json.loads(mismatch["result"])["code"] == "session_mismatch"
    assert (await get_state(shared_hub, sid, tok))["version"] == 0
    assert await run.stop() == "stopped"
    await ui.close()


async def test_the_bridge_ends_with_the_session(
    shared_hub: HubProcess, fake: FakeElevenLabs
) -> None:
    tok = token(_user())
    sid, (ui,) = await screens(shared_hub, tok, 1)
    run = await start_bridge(shared_hub, fake, sid, tok)
    async with httpx.AsyncClient(base_url=shared_hub.base_url) as http:
        reply = await http.delete(f"/sessions/{sid}", headers={"Authorization": f"Bearer {tok}"})
    assert reply.status_code == 200
    assert await asyncio.wait_for(run.task, 15) == "session_ended"
    await asyncio.wait_for(run.conv.closed.wait(), 10)
    await ui.close()


async def test_the_bridge_leaves_when_the_agent_ends_the_conversation(
    shared_hub: HubProcess, fake: FakeElevenLabs
) -> None:
    tok = token(_user())
    sid, (ui,) = await screens(shared_hub, tok, 1)
    run = await start_bridge(shared_hub, fake, sid, tok)
    agent = run.bridge.hub
    assert agent is not None
    await run.conv.close(1000, "call ended")
    assert await asyncio.wait_for(run.task, 15) == "conversation_ended"
    details = run.bridge.disconnect
    assert details is not None and (details.reason, details.close_code) == ("agent", 1000)
    left = await ui.recv_until(lambda f: f["type"] == "client_left")
    assert left["client"] == "agent" and left["connection_id"] == agent.connection_id
    await ui.close()


async def test_a_conversation_the_platform_refuses_is_an_error(
    shared_hub: HubProcess, fake: FakeElevenLabs
) -> None:
    tok = token(_user())
    sid, (ui,) = await screens(shared_hub, tok, 1)
    config = BridgeConfig(
        agent_id="agent_unknown",  # the fake closes 1008 for any other agent
        session_id=sid,
        hub_url=shared_hub.ws_url,
        token=tok,
        base_url=fake.base_url,
        keepalive=0,
    )
    bridge = AgentBridge(config, ToolRegistry.from_modules(["companion_ws.tools.shipping"]))
    with pytest.raises(BridgeError, match="1008 unknown agent"):
        await asyncio.wait_for(bridge.run(), 15)
    assert bridge.outcome == "conversation_failed"
    left = await ui.recv_until(lambda f: f["type"] == "client_left")
    assert left["client"] == "agent"
    await ui.close()


async def test_the_bridge_refuses_a_session_that_is_not_there(
    shared_hub: HubProcess, fake: FakeElevenLabs
) -> None:
    config = BridgeConfig(
        agent_id=fake.agent_id,
        session_id="no-such-session",
        hub_url=shared_hub.ws_url,
        token=token(_user()),
        base_url=fake.base_url,
    )
    bridge = AgentBridge(config, ToolRegistry.from_modules(["companion_ws.tools.shipping"]))
    with pytest.raises(BridgeError, match="no-such-session"):
        await asyncio.wait_for(bridge.run(), 15)
    assert fake.conversations == []


# ---------------------------------------------------------------- resume


def _agent_command(hub: HubProcess, sid: str, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "companion_ws",
        "agent",
        "--agent-id",
        "agent_test",
        "--session-id",
        sid,
        "--url",
        hub.ws_url,
        *extra,
    ]


async def _spawn_agent(
    hub: HubProcess, fake: FakeElevenLabs, sid: str, tok: str, log: Path
) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "COMPANION_TOKEN": tok,
        "ELEVENLABS_API_KEY": fake.api_key,
        "ELEVENLABS_BASE_URL": fake.base_url,
    }
    out = _append(log)
    try:
        return await asyncio.create_subprocess_exec(
            *_agent_command(hub, sid, "--requires-auth"), env=env, stdout=out, stderr=out
        )
    finally:
        out.close()


def _append(path: Path) -> BinaryIO:
    return path.open("ab")


async def _run_agent(hub: HubProcess, sid: str, env: dict[str, str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *_agent_command(hub, sid),
        env={k: v for k, v in {**os.environ, **env}.items() if k != "COMPANION_TOKEN" or v},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_the_agent_command_says_why_it_cannot_run(
    shared_hub: HubProcess, fake: FakeElevenLabs
) -> None:
    code, out = await _run_agent(shared_hub, "s-1", {"COMPANION_TOKEN": ""})
    assert code == 2 and "set COMPANION_TOKEN, or pipe it in with --token-stdin" in out
    env = {"COMPANION_TOKEN": token(_user()), "ELEVENLABS_BASE_URL": fake.base_url}
    code, out = await _run_agent(shared_hub, "no-such-session", env)
    assert code == 1 and "session 'no-such-session' is not live on the hub" in out, out
    assert fake.conversations == []


async def test_a_restarted_bridge_first_tells_the_agent_where_the_session_is(
    shared_hub: HubProcess, fake: FakeElevenLabs, tmp_path: Path
) -> None:
    tok = token(_user())
    sid, (ui,) = await screens(shared_hub, tok, 1)
    log = tmp_path / "agent.log"
    first = await _spawn_agent(shared_hub, fake, sid, tok, log)
    try:
        conv = await fake.conversation()
        # A private agent: the signed URL was fetched with the API key.
        assert fake.signed_url_requests[-1]["xi-api-key"] == fake.api_key
        assert "conversation_signature" in conv.query
        call_id = await conv.call_tool("get_shipping_quotes", {**QUOTE_PARAMS, "session_id": sid})
        quotes = json.loads((await conv.tool_result(call_id))["result"])["quotes"]
        fedex = next(q for q in quotes if q["carrier"] == "FedEx" and q["service"] == "Ground")
        await ui.request({"type": "update_session_state", "key": "selected_option", "value": fedex})
        await conv.contextual_update(lambda text: "selected FedEx Ground" in text)
    finally:
        first.send_signal(signal.SIGKILL)
        await first.wait()
    await asyncio.wait_for(conv.closed.wait(), 10)

    second = await _spawn_agent(shared_hub, fake, sid, tok, log)
    try:
        again = await fake.conversation()
        assert tokens.verify_capability(again.dynamic_variables["session_id"]).session_scope == sid
        opening = await again.wait_for(lambda m: True)  # its first message after the init
        assert opening["type"] == "contextual_update", opening
        text = opening["text"]
        assert text.startswith("Resuming the session."), text
        assert "a 5 lb package from 90210 to 10001" in text
        for quote in quotes:
            assert f"{quote['carrier']} {quote['service']} for ${quote['cost']:.2f}" in text
        assert f"The user selected FedEx Ground for ${fedex['cost']:.2f}" in text
    finally:
        second.send_signal(signal.SIGTERM)
        code = await asyncio.wait_for(second.wait(), 15)
    assert code == 0, log.read_text()
    await asyncio.wait_for(again.closed.wait(), 10)
    assert "companion-ws agent: stopped" in log.read_text()
    await ui.close()


async def test_a_bridge_back_on_a_hub_that_lost_its_history_is_told_the_summary(
    hub_factory: HubFactory, fake: FakeElevenLabs
) -> None:
    hub = hub_factory().start()
    tok = token(_user())
    sid, (ui,) = await screens(hub, tok, 1)
    run = await start_bridge(hub, fake, sid, tok)
    call_id = await run.conv.call_tool("get_shipping_quotes", {**QUOTE_PARAMS, "session_id": sid})
    await run.conv.tool_result(call_id)
    await ui.close()

    # The hub's database comes back from a backup: the history the bridge knows is gone
    # (a new epoch), so it must resync and be told where things stand.
    hub.kill()
    await _restore_from_backup(hub.database_url, sid)
    hub.start()
    told = await run.conv.contextual_update(lambda text: text.startswith("Resuming"), timeout=30)
    assert "Quotes offered (5)" in told and "90210" in told
    assert run.bridge.hub is not None and run.bridge.hub.reconnects >= 1
    assert await run.stop() == "stopped"


async def _restore_from_backup(database_url: str, session_id: str) -> None:
    """What a restore from an older backup leaves: the session, under another history."""
    engine = create_async_engine(database_url)
    try:
        async with engine.begin() as db:
            await db.execute(
                text("UPDATE sessions SET epoch = 'restored' WHERE id = :sid"), {"sid": session_id}
            )
            await db.execute(
                text("DELETE FROM events WHERE session_id = :sid"), {"sid": session_id}
            )
    finally:
        await engine.dispose()


def test_a_replay_with_changes_from_others_ends_in_one_summary() -> None:
    """The bridge's reading of a reconnect: replayed changes made by others while it was
    away are summed up once, after the replay, instead of one sentence each. The frames
    go through the hub client's mirror first, as in the bridge."""
    client = CompanionClient("ws://127.0.0.1:9", token="t", session_id="s1", client="agent")
    narrator = Narrator(client, "s1")
    mirror = client.mirror
    told: list[str] = []

    def receive(frame: dict[str, Any]) -> None:
        for action in mirror.receive(frame):
            if isinstance(action, Deliver):
                told.extend(narrator.read(action.frame))

    def reconnect(connection_id: str) -> None:
        mirror.dropped()
        assert mirror.connecting() == (mirror.seq, "e1")
        receive(
            {"type": "session_joined", "session_id": "s1", "connection_id": connection_id,
             "created": False, "resumed": True, "seq": mirror.seq, "epoch": "e1"}
        )  # fmt: skip

    mirror.connecting()
    receive({"type": "session_joined", "session_id": "s1", "connection_id": "c1", "seq": 2,
             "epoch": "e1"})  # fmt: skip
    receive({"type": "session_state", "session_id": "s1", "state": {}, "version": 0, "seq": 2})
    assert narrator.started() == [] and narrator.own == {"c1"}

    reconnect("c2")
    for frame in [
        {"type": "client_left", "seq": 3, "connection_id": "c1"},
        {
            "type": "session_state_updated",
            "seq": 4,
            "patch": {"selected_option": {"carrier": "UPS", "service": "Ground", "cost": 9.5}},
            "version": 1,
            "sender": "screen-1",
        },
        {"type": "client_joined", "seq": 5, "connection_id": "c2"},
        {"type": "resumed", "from_seq": 2, "to_seq": 5, "replayed": 3},
    ]:
        receive(frame)
    assert told == ["Resuming the session. The user selected UPS Ground for $9.50."]
    assert client.version == 1 and client.seq == 5

    # A replay of presence only: nothing to tell.
    told.clear()
    reconnect("c3")
    receive({"type": "client_joined", "seq": 6, "connection_id": "c3"})
    receive({"type": "resumed", "from_seq": 5, "to_seq": 6, "replayed": 1})
    assert told == []
    # Live again: a change from a screen is one sentence.
    receive(
        {
            "type": "session_state_updated",
            "seq": 7,
            "patch": {"selected_option": None},
            "version": 2,
            "sender": "screen-1",
        }
    )
    assert told == ["On screen, the user cleared the selected shipping option."]
    # A skipped version: the mirror fetches the state, and the agent hears it whole.
    told.clear()
    receive({"type": "session_state_updated", "seq": 8, "patch": {"x": 1}, "version": 4,
             "sender": "screen-1"})  # fmt: skip
    assert told == [] and client.version == 2
    receive({"type": "session_state", "session_id": "s1", "state": {"x": 1}, "version": 4,
             "seq": 8})  # fmt: skip
    assert told == [create_session_context({"x": 1})] and client.version == 4


def test_updates_are_described_by_their_source() -> None:
    assert (
        describe_update({"text": "pickup_booked", "data": {"at": "9am"}, "sender": "backend:ops"})
        == 'Update from the backend: pickup_booked ({"at":"9am"})'
    )
    long = describe_update({"text": "big", "data": {"x": "y" * 2000}, "sender": "c9"})
    assert long.startswith("Update from the screen: big (") and long.endswith("...)")
    assert len(long) < 700


def test_the_summary_quotes_the_last_exchanges_the_bridge_heard() -> None:
    """A summary (here after a ``resync_required``) quotes the conversation's last
    messages, corrections applied, from the transcript frames the bridge saw."""
    client = CompanionClient("ws://127.0.0.1:9", token="t", session_id="s1", client="agent")
    narrator = Narrator(client, "s1")
    said = [
        ("m1", "user", "Ship a box to 10001."),
        ("m2", "agent", "Sure, which weight and"),
        ("m2", "agent", "Sure."),  # the correction after an interruption
        ("m3", "user", "5 pounds."),
        ("m4", "agent", "Getting quotes."),
        ("m5", "user", "Thanks."),
    ]
    for seq, (message_id, role, words) in enumerate(said, start=1):
        narrator.read({"type": "transcript", "seq": seq, "message_id": message_id,
                       "role": role, "text": words, "final": True})  # fmt: skip
    [summary] = narrator.read(
        {"type": "resync_required", "state": {}, "version": 0, "seq": 9, "epoch": "e2"}
    )
    messages = [
        {"role": "agent", "text": "Sure."},
        {"role": "user", "text": "5 pounds."},
        {"role": "agent", "text": "Getting quotes."},
        {"role": "user", "text": "Thanks."},
    ]
    assert summary == create_session_context({}, messages)
    assert "Ship a box" not in summary and "which weight" not in summary


async def test_the_bridge_holds_the_voice_and_hands_it_to_a_screen(
    shared_hub: HubProcess, fake: FakeElevenLabs
) -> None:
    """docs/protocol.md section 17: the bridge takes the floor when it talks; a screen's
    interrupt reaches it (the screens see the agent listen; the agent is told); a
    screen taking the voice ends the bridge's conversation ("voice_moved")."""
    tok = token(_user())
    sid, (ui,) = await screens(shared_hub, tok, 1)
    bridge = fake.bridge(shared_hub.ws_url, sid, tok)
    task = asyncio.create_task(run_holding(bridge))
    conv = await fake.conversation()
    floor = await ui.recv_until(lambda f: f["type"] == "voice_floor", timeout=10)
    assert bridge.hub is not None
    assert floor["connection_id"] == bridge.hub.connection_id
    await conv.speak("Let me read you every quote.", seconds=6.0)
    await ui.recv_until(lambda f: f.get("type") == "agent_state" and f["state"] == "speaking")
    await ui.send({"type": "agent_control", "action": "interrupt"})
    # Long before its 6 s of speech would end.
    heard = await ui.recv_until(
        lambda f: f.get("type") == "agent_state" and f["state"] == "listening", timeout=2
    )
    assert heard["sender"] == bridge.hub.connection_id
    assert "interrupted" in await conv.contextual_update(lambda text: "interrupted" in text)
    await ui.send({"type": "take_voice"})
    assert await asyncio.wait_for(task, 15) == "voice_moved"
    await asyncio.wait_for(conv.closed.wait(), 10)
    await ui.close()
