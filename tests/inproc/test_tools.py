"""``client_tool_call`` over the hub socket (docs/protocol.md sections 3 and 10), on the
in-process hub: validated parameters, one effect per ``tool_call_id`` (again,
concurrently), the session named by ``parameters.session_id`` or
``metadata.session_id``. (On two processes: tests/integration/test_tools.py.)"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from tests.support.frames import new_user, tool_answer, tool_call
from tests.support.hub import token
from tests.support.inproc import InProcessHub, InProcessWS

QUOTE_PARAMS = {"from_zip": "90210", "to_zip": "10001", "weight": 5}


async def _state(hub: InProcessHub, sid: str, tok: str) -> dict[str, Any]:
    reply = await hub.http.get(f"/sessions/{sid}/state", headers={"Authorization": f"Bearer {tok}"})
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


async def _nothing_broadcast_before_marker(ws: InProcessWS, sender: InProcessWS) -> None:
    """The next broadcast ``ws`` sees is a fresh marker: nothing came before it."""
    marker = uuid.uuid4().hex
    await sender.send({"type": "contextual_update", "text": marker})
    frame = await ws.recv_until(lambda f: "seq" in f and f["type"] != "client_joined")
    assert frame["type"] == "contextual_update" and frame["text"] == marker, frame


async def test_a_tool_call_answers_json_text_and_updates_every_screen(
    shared_inproc: InProcessHub,
) -> None:
    tok = token(new_user())
    caller = await shared_inproc.connect(tok, client="agent")
    sid = caller.welcome["session_id"]
    screen = await shared_inproc.connect(tok, session_id=sid)
    await caller.send(
        {**tool_call("get_shipping_quotes", {**QUOTE_PARAMS, "session_id": sid}), "requestId": "r1"}
    )
    # The run starts, its state change is committed and broadcast, then its update, the
    # run's end, and the answer.
    frames = [await caller.recv_until(lambda f: f.get("requestId") == "r1") for _ in range(5)]
    assert [f["type"] for f in frames] == [
        "tool_call_started",
        "session_state_updated",
        "contextual_update",
        "tool_call_finished",
        "client_tool_result",
    ]
    reply = frames[-1]
    assert reply["is_error"] is False and isinstance(reply["result"], str), reply
    result = json.loads(reply["result"])
    assert [q["cost"] for q in result["quotes"]] == sorted(q["cost"] for q in result["quotes"])

    updated = await screen.recv_type("session_state_updated")
    ready = await screen.recv_until(
        lambda f: f["type"] == "contextual_update" and f["text"] == "quote_ready"
    )
    assert updated["seq"] + 1 == ready["seq"]  # the state change, then its update
    assert updated["patch"]["quotes"] == result["quotes"] == ready["data"]["quotes"]
    state = await _state(shared_inproc, sid, tok)
    assert state["version"] == 1
    assert state["state"]["shipping_details"] == {"from": "90210", "to": "10001", "weight_lbs": 5}

    quote = result["quotes"][0]
    label = await tool_answer(
        caller, tool_call("create_shipping_label", {"quote_id": quote["quote_id"]})
    )
    assert label["is_error"] is False, label
    tracking = json.loads(label["result"])["label"]["tracking_number"]
    created = await screen.recv_until(
        lambda f: f["type"] == "contextual_update" and f["text"] == "label_created"
    )
    assert created["data"]["label"]["tracking_number"] == tracking
    state = await _state(shared_inproc, sid, tok)
    assert state["version"] == 2 and state["state"]["ui"]["current_step"] == "label"
    assert state["state"]["selected_option"]["quote_id"] == quote["quote_id"]
    await caller.close()
    await screen.close()


@pytest.mark.parametrize(
    ("tool_name", "parameters", "named"),
    [
        ("get_shipping_quotes", {**QUOTE_PARAMS, "weight": 0}, "weight"),
        ("get_shipping_quotes", {**QUOTE_PARAMS, "weight": 151}, "weight"),
        ("get_shipping_quotes", {**QUOTE_PARAMS, "from_zip": "abc"}, "from_zip"),
        ("get_shipping_quotes", {**QUOTE_PARAMS, "to_zip": 10001}, "to_zip"),
        ("get_shipping_quotes", {"from_zip": "90210", "to_zip": "10001"}, "weight"),
        ("create_shipping_label", {"quote_id": "q_nope"}, "quote_id"),
        ("no_such_tool", {}, "no_such_tool"),
    ],
)
async def test_bad_parameters_are_an_error_result_naming_them_and_change_nothing(
    shared_inproc: InProcessHub, tool_name: str, parameters: dict[str, Any], named: str
) -> None:
    tok = token(new_user())
    caller = await shared_inproc.connect(tok)
    sid = caller.welcome["session_id"]
    screen = await shared_inproc.connect(tok, session_id=sid)
    if tool_name == "create_shipping_label":  # there are quotes, just not this one
        ok = await tool_answer(caller, tool_call("get_shipping_quotes", QUOTE_PARAMS))
        assert ok["is_error"] is False
        await screen.recv_type("tool_call_finished")
    before = await _state(shared_inproc, sid, tok)

    call = tool_call(tool_name, {**parameters, "session_id": sid})
    reply = await tool_answer(caller, call)
    assert reply["type"] == "client_tool_result" and reply["is_error"] is True, reply
    assert isinstance(reply["result"], str)
    assert named in json.loads(reply["result"])["error"]
    assert await _state(shared_inproc, sid, tok) == before
    if tool_name != "no_such_tool":  # a run that failed: framed, with nothing in between
        call_id = call["client_tool_call"]["tool_call_id"]
        started = await screen.recv_until(lambda f: "seq" in f and f["type"] != "client_joined")
        finished = await screen.recv_until(lambda f: "seq" in f)
        assert (started["type"], started["tool_call_id"]) == ("tool_call_started", call_id)
        assert (finished["type"], finished["tool_call_id"]) == ("tool_call_finished", call_id)
        assert finished["is_error"] is True and finished["seq"] == started["seq"] + 1
    await _nothing_broadcast_before_marker(screen, caller)
    await caller.close()
    await screen.close()


@pytest.mark.parametrize("where", ["parameters", "metadata"])
async def test_a_call_naming_another_session_is_a_mismatch_and_runs_nothing(
    shared_inproc: InProcessHub, where: str
) -> None:
    tok = token(new_user())
    caller = await shared_inproc.connect(tok)
    sid = caller.welcome["session_id"]
    other = await shared_inproc.connect(tok)
    other_sid = other.welcome["session_id"]
    call_id = f"toolu_{uuid.uuid4().hex[:12]}"
    if where == "parameters":
        frame = tool_call("get_shipping_quotes", {**QUOTE_PARAMS, "session_id": other_sid}, call_id)
    else:
        frame = tool_call(
            "get_shipping_quotes", QUOTE_PARAMS, call_id, metadata={"session_id": other_sid}
        )
    reply = await tool_answer(caller, frame)
    assert reply["type"] == "error" and reply["code"] == "session_mismatch", reply
    for s in (sid, other_sid):
        assert (await _state(shared_inproc, s, tok))["version"] == 0
    # Nothing ran, so nothing was recorded: the same id still runs once, for this session.
    ok = await tool_answer(
        caller, tool_call("get_shipping_quotes", {**QUOTE_PARAMS, "session_id": sid}, call_id)
    )
    assert ok["type"] == "client_tool_result" and ok["is_error"] is False, ok
    # ... and now belongs to it: on the other session it is a mismatch.
    stolen = await tool_answer(other, tool_call("get_shipping_quotes", QUOTE_PARAMS, call_id))
    assert stolen["type"] == "error" and stolen["code"] == "session_mismatch", stolen
    assert (await _state(shared_inproc, other_sid, tok))["version"] == 0
    await caller.close()
    await other.close()


async def test_the_same_tool_call_id_again_runs_nothing_and_answers_the_same(
    shared_inproc: InProcessHub,
) -> None:
    tok = token(new_user())
    caller = await shared_inproc.connect(tok)
    sid = caller.welcome["session_id"]
    frame = tool_call("get_shipping_quotes", QUOTE_PARAMS)
    first = await tool_answer(caller, frame)
    await caller.close()
    # After a reconnect, on a new socket.
    again = await shared_inproc.connect(tok, session_id=sid)
    second = await tool_answer(again, frame)
    assert (first["result"], first["is_error"]) == (second["result"], second["is_error"])
    assert (await _state(shared_inproc, sid, tok))["version"] == 1
    await again.close()


async def test_two_concurrent_calls_with_one_id_have_one_effect(
    shared_inproc: InProcessHub,
) -> None:
    tok = token(new_user())
    one = await shared_inproc.connect(tok)
    sid = one.welcome["session_id"]
    two = await shared_inproc.connect(tok, session_id=sid)
    watcher = await shared_inproc.connect(tok, session_id=sid)
    for round_ in range(5):
        frame = tool_call("get_shipping_quotes", {**QUOTE_PARAMS, "weight": 1 + round_})
        a, b = await asyncio.gather(tool_answer(one, frame), tool_answer(two, frame))
        assert a["is_error"] is False and (a["result"], a["is_error"]) == (
            b["result"],
            b["is_error"],
        )
        assert (await _state(shared_inproc, sid, tok))["version"] == round_ + 1
    marker = uuid.uuid4().hex
    await one.send({"type": "contextual_update", "text": marker})
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1].get("text") != marker:
        seen.append(await watcher.recv(10))
    updates = [f["version"] for f in seen if f["type"] == "session_state_updated"]
    ready = [f for f in seen if f.get("text") == "quote_ready"]
    assert updates == [1, 2, 3, 4, 5] and len(ready) == 5
    # One run each: the repeat of the id broadcast nothing, not even a start.
    runs = [(f["type"], f["tool_call_id"]) for f in seen if f["type"].startswith("tool_call_")]
    assert [kind for kind, _ in runs] == ["tool_call_started", "tool_call_finished"] * 5
    assert len({call_id for _, call_id in runs}) == 5
    for ws in (one, two, watcher):
        await ws.close()


async def test_the_elevenlabs_routes_are_off_without_their_secrets(
    shared_inproc: InProcessHub,
) -> None:
    """No COMPANION_ELEVENLABS_*_SECRET on this hub: the routes answer 404 (see
    test_webhooks.py for them switched on)."""
    tool = await shared_inproc.http.post(
        "/elevenlabs/tools/get_shipping_quotes",
        json={**QUOTE_PARAMS, "session_id": "s"},
        headers={"X-Companion-Tool-Secret": ""},
    )
    hook = await shared_inproc.http.post("/elevenlabs/post-call", content=b"{}")
    assert tool.status_code == 404 and "COMPANION_ELEVENLABS_TOOL_SECRET" in tool.text
    assert hook.status_code == 404 and "COMPANION_ELEVENLABS_WEBHOOK_SECRET" in hook.text
