"""The conversation on every screen (docs/protocol.md section 13), on the in-process hub on
SQLite and PostgreSQL: tool runs framed by ``tool_call_started`` /
``tool_call_finished`` on every path, ``GET /sessions/{id}/messages``, and tasks
started, completed and abandoned."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.hub import token, tokens
from tests.support.inproc import InProcessHub, InProcessWS, inprocess_hub

TOOL_SECRET = "tool-secret-" + "z" * 24
QUOTE_PARAMS = {"from_zip": "90210", "to_zip": "10001", "weight": 5}
SHORT_TTL = {"session_ttl": 1.0, "sweep_interval": 0.2}


@pytest.fixture
async def conv_hub(shared_db_url: str) -> AsyncIterator[InProcessHub]:
    """A hub with server tools switched on, on the module's database."""
    async with inprocess_hub(
        shared_db_url,
        elevenlabs_tool_secret=TOOL_SECRET,
        # A long conversation is sent in one go (test_a_long_conversation_...).
        rate_limit_burst=2000,
    ) as hub:
        yield hub


@pytest.fixture
def http(conv_hub: InProcessHub) -> httpx.AsyncClient:
    return conv_hub.http


def _user() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


def _auth(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


def _call(tool_name: str, parameters: dict[str, Any], call_id: str) -> dict[str, Any]:
    return {
        "type": "client_tool_call",
        "client_tool_call": {
            "tool_name": tool_name,
            "tool_call_id": call_id,
            "parameters": parameters,
        },
    }


async def _ask(ws: InProcessWS, frame: dict[str, Any]) -> dict[str, Any]:
    rid = uuid.uuid4().hex
    await ws.send({**frame, "requestId": rid})
    return await ws.recv_until(
        lambda f: f.get("requestId") == rid and f["type"] in ("client_tool_result", "error"), 10
    )


async def _broadcasts_until(ws: InProcessWS, last: str) -> list[dict[str, Any]]:
    """The broadcasts ``ws`` receives up to and including the first of type ``last``."""
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["type"] != last:
        frame = await ws.recv(10)
        if "seq" in frame and frame["type"] not in ("client_joined", "client_left"):
            seen.append(frame)
    return seen


async def _marker(ws: InProcessWS, sender: InProcessWS) -> list[dict[str, Any]]:
    """Every broadcast ``ws`` receives before a fresh marker ``sender`` sends."""
    marker = uuid.uuid4().hex
    await sender.send({"type": "contextual_update", "text": marker})
    seen = await _broadcasts_until(ws, "contextual_update")
    while seen[-1].get("text") != marker:
        seen += await _broadcasts_until(ws, "contextual_update")
    return seen[:-1]


async def _state(http: httpx.AsyncClient, sid: str, tok: str) -> dict[str, Any]:
    reply = await http.get(f"/sessions/{sid}/state", headers=_auth(tok))
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


# ---------------------------------------------------------------- tool lifecycle


def _assert_framed_run(frames: list[dict[str, Any]], call_id: str, tool_name: str) -> None:
    """started, the state change (and its update), finished: consecutive seqs."""
    kinds = [f["type"] for f in frames]
    assert kinds == [
        "tool_call_started",
        "session_state_updated",
        "contextual_update",
        "tool_call_finished",
    ], kinds
    seqs = [f["seq"] for f in frames]
    assert seqs == list(range(seqs[0], seqs[0] + 4))
    started, _, _, finished = frames
    assert (started["tool_call_id"], started["tool_name"]) == (call_id, tool_name)
    assert (finished["tool_call_id"], finished["tool_name"]) == (call_id, tool_name)
    assert finished["is_error"] is False
    assert isinstance(finished["duration_ms"], int) and finished["duration_ms"] >= 0


async def test_a_socket_tool_run_is_framed_in_seq_order_and_a_repeat_broadcasts_nothing(
    conv_hub: InProcessHub, http: httpx.AsyncClient
) -> None:
    tok = token(_user())
    agent = await conv_hub.connect(tok, client="agent")
    sid = agent.welcome["session_id"]
    screen = await conv_hub.connect(tok, session_id=sid)
    call_id = f"toolu_{uuid.uuid4().hex[:12]}"
    frame = _call("get_shipping_quotes", QUOTE_PARAMS, call_id)
    first = await _ask(agent, frame)
    assert first["is_error"] is False
    _assert_framed_run(
        await _broadcasts_until(screen, "tool_call_finished"), call_id, "get_shipping_quotes"
    )
    again = await _ask(agent, frame)
    assert again["result"] == first["result"]
    assert await _marker(screen, agent) == []  # the repeat ran nothing and said nothing
    # The history holds the run too, in the same order.
    history = (await http.get(f"/sessions/{sid}/history", headers=_auth(tok))).json()["events"]
    kinds = [e["type"] for e in history if e["type"] not in ("client_joined", "client_left")]
    assert kinds[:4] == [
        "tool_call_started",
        "session_state_updated",
        "contextual_update",
        "tool_call_finished",
    ]
    await agent.close()
    await screen.close()


async def test_a_server_tool_run_is_framed_too_and_its_retry_broadcasts_nothing(
    conv_hub: InProcessHub, http: httpx.AsyncClient
) -> None:
    tok = token(_user())
    screen = await conv_hub.connect(tok)
    sid = screen.welcome["session_id"]
    capability = tokens.mint_capability("owner", sid, 3600)
    call_id = "srv-" + uuid.uuid4().hex
    body = {**QUOTE_PARAMS, "session_id": capability, "tool_call_id": call_id}
    secret = {"Authorization": f"Bearer {TOOL_SECRET}"}
    reply = await http.post("/elevenlabs/tools/get_shipping_quotes", json=body, headers=secret)
    assert reply.status_code == 200, reply.text
    _assert_framed_run(
        await _broadcasts_until(screen, "tool_call_finished"),
        call_id,
        "get_shipping_quotes",
    )
    retry = await http.post("/elevenlabs/tools/get_shipping_quotes", json=body, headers=secret)
    assert retry.headers["X-Tool-Call-Replayed"] == "true"
    sender = await conv_hub.connect(tok, session_id=sid)
    assert await _marker(screen, sender) == []
    await screen.close()
    await sender.close()


async def test_a_failed_run_is_framed_with_is_error_and_changes_nothing(
    conv_hub: InProcessHub, http: httpx.AsyncClient
) -> None:
    tok = token(_user())
    agent = await conv_hub.connect(tok, client="agent")
    sid = agent.welcome["session_id"]
    screen = await conv_hub.connect(tok, session_id=sid)
    # A precondition the tool checks (ToolError), then a parameter it refuses.
    failing: list[tuple[str, dict[str, Any]]] = [
        ("create_shipping_label", {"quote_id": "q_nope"}),
        ("get_shipping_quotes", {**QUOTE_PARAMS, "weight": -1}),
    ]
    for tool_name, params in failing:
        call_id = f"toolu_{uuid.uuid4().hex[:12]}"
        reply = await _ask(agent, _call(tool_name, params, call_id))
        assert reply["is_error"] is True
        frames = await _broadcasts_until(screen, "tool_call_finished")
        assert [(f["type"], f["tool_call_id"]) for f in frames] == [
            ("tool_call_started", call_id),
            ("tool_call_finished", call_id),
        ]
        assert frames[1]["is_error"] is True and frames[1]["seq"] == frames[0]["seq"] + 1
    assert (await _state(http, sid, tok))["version"] == 0
    # An unknown tool is not a run: nothing is broadcast.
    unknown = await _ask(agent, _call("no_such_tool", {}, "toolu_unknown"))
    assert unknown["is_error"] is True
    assert await _marker(screen, agent) == []
    await agent.close()
    await screen.close()


# ---------------------------------------------------------------- tasks


async def test_quotes_start_a_shipment_task_in_the_same_change_and_a_label_completes_it(
    conv_hub: InProcessHub, http: httpx.AsyncClient
) -> None:
    tok = token(_user())
    agent = await conv_hub.connect(tok, client="agent")
    sid = agent.welcome["session_id"]
    screen = await conv_hub.connect(tok, session_id=sid)

    quotes = await _ask(agent, _call("get_shipping_quotes", QUOTE_PARAMS, uuid.uuid4().hex))
    frames = await _broadcasts_until(screen, "tool_call_finished")
    [change] = [f for f in frames if f["type"] == "session_state_updated"]
    [task] = change["patch"]["tasks"]  # in the tool's own patch: one change, one version
    assert change["version"] == 1 and "quotes" in change["patch"]
    assert task["name"] == "shipment" and task["status"] == "active"
    assert task["ended_at"] is None and isinstance(task["started_at"], int)

    # Quotes again while it is active: the same task, no second one.
    again = {**QUOTE_PARAMS, "weight": 7}
    await _ask(agent, _call("get_shipping_quotes", again, uuid.uuid4().hex))
    frames = await _broadcasts_until(screen, "tool_call_finished")
    [change] = [f for f in frames if f["type"] == "session_state_updated"]
    assert "tasks" not in change["patch"]

    assert json.loads(quotes["result"])["quotes"]
    # The second quotes replaced the first: the label is for one of the current ones.
    state = await _state(http, sid, tok)
    quote_id = state["state"]["quotes"][0]["quote_id"]
    label = await _ask(agent, _call("create_shipping_label", {"quote_id": quote_id}, "lbl-" + sid))
    assert label["is_error"] is False, label
    frames = await _broadcasts_until(screen, "tool_call_finished")
    [change] = [f for f in frames if f["type"] == "session_state_updated"]
    [done] = change["patch"]["tasks"]
    assert done["task_id"] == task["task_id"] and done["status"] == "completed"
    assert done["ended_at"] >= task["started_at"]
    state = await _state(http, sid, tok)
    assert state["version"] == 3 and state["state"]["tasks"] == [done]

    # Ending the session now abandons nothing: only session_ended is broadcast.
    await screen.send({"type": "end_session"})
    [ended] = await _broadcasts_until(screen, "session_ended")
    assert ended["reason"] == "ended"
    assert (await _state(http, sid, tok))["version"] == 3
    await agent.close()
    await screen.close()


@pytest.mark.parametrize("how", ["delete", "end_session"])
async def test_ending_a_session_with_an_active_task_abandons_it_first_and_durably(
    conv_hub: InProcessHub, http: httpx.AsyncClient, how: str
) -> None:
    tok = token(_user())
    agent = await conv_hub.connect(tok, client="agent")
    sid = agent.welcome["session_id"]
    screen = await conv_hub.connect(tok, session_id=sid)
    await _ask(agent, _call("get_shipping_quotes", QUOTE_PARAMS, uuid.uuid4().hex))
    await _broadcasts_until(screen, "tool_call_finished")
    if how == "delete":
        reply = await http.delete(f"/sessions/{sid}", headers=_auth(tok))
        assert reply.status_code == 200 and reply.json()["already_ended"] is False
    else:
        await screen.send({"type": "end_session"})  # the owner's screen (an agent may not)
    change, ended = await _broadcasts_until(screen, "session_ended")
    assert change["type"] == "session_state_updated" and change["version"] == 2
    [task] = change["patch"]["tasks"]
    assert task["status"] == "abandoned" and isinstance(task["ended_at"], int)
    assert ended["type"] == "session_ended" and ended["seq"] == change["seq"] + 1
    info = (await http.get(f"/sessions/{sid}", headers=_auth(tok))).json()
    assert info["active"] is False and info["state_version"] == 2
    assert info["state"]["tasks"] == [task]
    # Ending it again changes nothing more.
    again = await http.delete(f"/sessions/{sid}", headers=_auth(tok))
    assert again.json()["already_ended"] is True
    assert (await _state(http, sid, tok))["version"] == 2
    await agent.close()
    await screen.close()


async def test_an_expired_session_with_an_active_task_has_it_abandoned(db_url: str) -> None:
    async with inprocess_hub(db_url, **SHORT_TTL) as hub:
        await _an_expired_session_with_an_active_task_has_it_abandoned(hub)


async def _an_expired_session_with_an_active_task_has_it_abandoned(hub: InProcessHub) -> None:
    tok = token(_user())
    agent = await hub.connect(tok, client="agent")
    sid = agent.welcome["session_id"]
    screen = await hub.connect(tok, session_id=sid)
    reply = await _ask(agent, _call("get_shipping_quotes", QUOTE_PARAMS, uuid.uuid4().hex))
    assert reply["is_error"] is False
    await _broadcasts_until(screen, "tool_call_finished")
    # Idle now: the sweep ends it (TTL 1 s; allow a loaded machine plenty).
    seen: list[dict[str, Any]] = []
    while not seen or seen[-1]["type"] != "session_ended":
        frame = await screen.recv(15)
        if "seq" in frame and frame["type"] not in ("client_joined", "client_left"):
            seen.append(frame)
    change, ended = seen
    assert change["type"] == "session_state_updated"
    assert change["patch"]["tasks"][0]["status"] == "abandoned"
    assert ended["reason"] == "expired" and ended["seq"] == change["seq"] + 1
    info = (await hub.http.get(f"/sessions/{sid}", headers=_auth(tok))).json()
    assert info["end_reason"] == "expired"
    [task] = info["state"]["tasks"]
    assert task["status"] == "abandoned" and task["name"] == "shipment"
    await agent.close()
    await screen.close()


# ---------------------------------------------------------------- messages


def _transcript(mid: str, text: str, *, role: str = "user", final: bool = True) -> dict[str, Any]:
    return {"type": "transcript", "role": role, "message_id": mid, "text": text, "final": final}


async def test_messages_are_the_conversation_with_corrections_applied(
    conv_hub: InProcessHub, http: httpx.AsyncClient
) -> None:
    tok = token(_user())
    agent = await conv_hub.connect(tok, client="agent")
    sid = agent.welcome["session_id"]
    said = [
        _transcript("u1", "ship a box", final=False),
        _transcript("u1", "ship a 5 lb box"),
        _transcript("a1", "Sure! Where from and", role="agent", final=False),
        {"type": "agent_state", "state": "listening"},
        _transcript("u2", "from 90210 to 10001"),
        # ElevenLabs' agent_response_correction: the interrupted message, cut short.
        _transcript("a1", "Sure! Where from", role="agent"),
    ]
    for frame in said:
        echo = await agent.request(frame)
        assert "seq" in echo, echo
    reply = await http.get(f"/sessions/{sid}/messages", headers=_auth(tok))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["session_id"] == sid and body["has_more"] is False
    messages = body["messages"]
    assert [(m["message_id"], m["role"], m["text"], m["final"]) for m in messages] == [
        ("u1", "user", "ship a 5 lb box", True),
        ("a1", "agent", "Sure! Where from", True),
        ("u2", "user", "from 90210 to 10001", True),
    ]
    seqs = [m["seq"] for m in messages]
    assert seqs == sorted(seqs) and all(isinstance(m["timestamp"], int) for m in messages)

    # Pages: limit, then on from the last message's seq; a late correction of the first
    # page's message is no new message on the second.
    first = (await http.get(f"/sessions/{sid}/messages?limit=1", headers=_auth(tok))).json()
    assert [m["message_id"] for m in first["messages"]] == ["u1"] and first["has_more"] is True
    rest = (
        await http.get(
            f"/sessions/{sid}/messages?after_seq={first['messages'][0]['seq']}&limit=5",
            headers=_auth(tok),
        )
    ).json()
    assert [m["message_id"] for m in rest["messages"]] == ["a1", "u2"]
    assert rest["has_more"] is False
    await agent.close()


async def test_messages_are_for_those_who_may_read_the_session(
    conv_hub: InProcessHub, http: httpx.AsyncClient
) -> None:
    tok = token(_user())
    agent = await conv_hub.connect(tok, client="agent")
    sid = agent.welcome["session_id"]
    await agent.request(_transcript("u1", "hello"))
    stranger = await http.get(f"/sessions/{sid}/messages", headers=_auth(token(_user())))
    assert stranger.status_code in (403, 404), stranger.text
    anonymous = await http.get(f"/sessions/{sid}/messages")
    assert anonymous.status_code == 401
    for bad in ("limit=0", "limit=1001", "after_seq=-1", "limit=x"):
        refused = await http.get(f"/sessions/{sid}/messages?{bad}", headers=_auth(tok))
        assert refused.status_code == 400, bad
    missing = await http.get(f"/sessions/{uuid.uuid4().hex}/messages", headers=_auth(tok))
    assert missing.status_code == 404
    admin = await http.get(f"/sessions/{sid}/messages", headers=_auth(token("ops", admin=True)))
    assert [m["text"] for m in admin.json()["messages"]] == ["hello"]
    await agent.close()


async def test_a_long_conversation_is_read_across_pages_of_the_log(
    conv_hub: InProcessHub, http: httpx.AsyncClient
) -> None:
    """More transcript events than one read of the log (READ_PAGE): the corrections at
    the end still reach the first messages."""
    from companion_ws.hub.conversation import READ_PAGE

    tok = token(_user())
    agent = await conv_hub.connect(tok, client="agent")
    sid = agent.welcome["session_id"]
    count = READ_PAGE + 20
    for i in range(count):
        await agent.send(_transcript(f"m{i}", f"partial {i}", final=False))
    for i in range(3):
        await agent.send(_transcript(f"m{i}", f"final {i}"))
    await agent.recv_until(lambda f: f.get("message_id") == "m2" and f.get("final") is True, 30)
    body = (await http.get(f"/sessions/{sid}/messages?limit=1000", headers=_auth(tok))).json()
    messages = body["messages"]
    assert len(messages) == count and body["has_more"] is False
    assert [m["text"] for m in messages[:4]] == ["final 0", "final 1", "final 2", "partial 3"]
    assert messages[-1]["message_id"] == f"m{count - 1}"
    await agent.close()
