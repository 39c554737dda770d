"""ElevenLabs' HTTP calls into the hub, on the in-process hub: server (webhook) tools
behind a shared secret, the HMAC-signed post-call webhook, and
``POST /sessions/{id}/events`` for backends. (A redelivery after the hub died between
the ledger and the publish: tests/integration/test_webhooks.py.)"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from companion_ws.endpoints.elevenlabs import sign
from tests.support.frames import new_user
from tests.support.hub import token, tokens
from tests.support.inproc import InProcessHub, InProcessWS, inprocess_hub
from tests.support.webhooks import capability, post_call_body

TOOL_SECRET = "tool-secret-" + "x" * 24
WEBHOOK_SECRET = "wsec_" + "y" * 32
QUOTE_PARAMS = {"from_zip": "90210", "to_zip": "10001", "weight": 5}


@pytest.fixture
async def el_hub(shared_db_url: str) -> AsyncIterator[InProcessHub]:
    """A hub with the ElevenLabs secrets configured, on the module's database."""
    async with inprocess_hub(
        shared_db_url,
        elevenlabs_tool_secret=TOOL_SECRET,
        elevenlabs_webhook_secret=WEBHOOK_SECRET,
    ) as hub:
        yield hub


@pytest.fixture
def http(el_hub: InProcessHub) -> httpx.AsyncClient:
    return el_hub.http


def _auth(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


async def _session(el_hub: InProcessHub) -> tuple[str, str, InProcessWS]:
    tok = token(new_user())
    ui = await el_hub.connect(tok)
    # Its own arrival is an event too, committed before anyone sees it: once it is
    # here, the history is settled.
    await ui.recv_type("client_joined")
    return ui.welcome["session_id"], tok, ui


async def _version(http: httpx.AsyncClient, sid: str, tok: str) -> int:
    reply = await http.get(f"/sessions/{sid}/state", headers=_auth(tok))
    assert reply.status_code == 200, reply.text
    version: int = reply.json()["version"]
    return version


async def _history(http: httpx.AsyncClient, sid: str, tok: str) -> list[dict[str, Any]]:
    reply = await http.get(f"/sessions/{sid}/history", headers=_auth(tok))
    assert reply.status_code == 200, reply.text
    events: list[dict[str, Any]] = reply.json()["events"]
    return events


# ---------------------------------------------------------------- server tools


def _tool_url(name: str = "get_shipping_quotes") -> str:
    return f"/elevenlabs/tools/{name}"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer wrong-secret"},
        {"X-Companion-Tool-Secret": "wrong-secret"},
        {"Authorization": f"Basic {TOOL_SECRET}"},
        {"Authorization": f"Bearer {TOOL_SECRET[:-1]}"},
    ],
)
async def test_a_server_tool_call_without_the_secret_is_refused(
    el_hub: InProcessHub, http: httpx.AsyncClient, headers: dict[str, str]
) -> None:
    sid, tok, ui = await _session(el_hub)
    reply = await http.post(
        _tool_url(), json={**QUOTE_PARAMS, "session_id": capability(sid)}, headers=headers
    )
    assert reply.status_code == 401, reply.text
    assert reply.json()["error"]["code"] == "unauthorized"
    assert await _version(http, sid, tok) == 0
    await ui.close()


@pytest.mark.parametrize("header", ["Authorization", "X-Companion-Tool-Secret"])
async def test_a_server_tool_runs_the_tool_and_every_screen_sees_it(
    el_hub: InProcessHub, http: httpx.AsyncClient, header: str
) -> None:
    sid, tok, ui = await _session(el_hub)
    value = f"Bearer {TOOL_SECRET}" if header == "Authorization" else TOOL_SECRET
    reply = await http.post(
        _tool_url(), json={**QUOTE_PARAMS, "session_id": capability(sid)}, headers={header: value}
    )
    assert reply.status_code == 200, reply.text
    body = reply.json()  # the tool's result itself: what the agent's LLM sees
    assert len(body["quotes"]) == 5 and body["shipping_details"]["to"] == "10001"
    update = await ui.recv_until(lambda f: f.get("text") == "quote_ready")
    assert update["data"]["quotes"] == body["quotes"]
    assert update["sender"] == "elevenlabs:server-tool"
    assert await _version(http, sid, tok) == 1
    await ui.close()


async def test_a_server_tool_call_runs_once_per_idempotency_key(
    el_hub: InProcessHub, http: httpx.AsyncClient
) -> None:
    sid, tok, ui = await _session(el_hub)
    secret = {"X-Companion-Tool-Secret": TOOL_SECRET}
    body = {**QUOTE_PARAMS, "session_id": capability(sid)}
    key = {**secret, "Idempotency-Key": f"idem-{uuid.uuid4().hex}"}
    first = await http.post(_tool_url(), json=body, headers=key)
    again = await http.post(_tool_url(), json=body, headers=key)
    assert first.status_code == again.status_code == 200
    assert first.content == again.content
    assert first.headers["x-tool-call-replayed"] == "false"
    assert again.headers["x-tool-call-replayed"] == "true"
    assert await _version(http, sid, tok) == 1

    # Concurrently, with the id in the body this time, and once over a hub socket.
    call_id = f"toolu_{uuid.uuid4().hex}"
    heavier = {**body, "weight": 9, "tool_call_id": call_id}
    socket_call = {
        "type": "client_tool_call",
        "client_tool_call": {
            "tool_name": "get_shipping_quotes",
            "tool_call_id": call_id,
            "parameters": {k: v for k, v in heavier.items() if k != "tool_call_id"},
        },
        "requestId": "over-the-socket",
    }
    replies = await asyncio.gather(
        http.post(_tool_url(), json=heavier, headers=secret),
        http.post(_tool_url(), json=heavier, headers=secret),
        ui.send(socket_call),
    )
    over_socket = await ui.recv_until(
        lambda f: f["type"] == "client_tool_result" and f.get("requestId") == "over-the-socket"
    )
    a, b = replies[0], replies[1]
    assert a.status_code == b.status_code == 200
    assert a.content == b.content == over_socket["result"].encode()
    assert await _version(http, sid, tok) == 2
    await ui.close()


@pytest.mark.parametrize(
    ("name", "params", "named"),
    [
        ("get_shipping_quotes", {**QUOTE_PARAMS, "weight": 0}, "weight"),
        ("get_shipping_quotes", {**QUOTE_PARAMS, "to_zip": "abc"}, "to_zip"),
        ("create_shipping_label", {"quote_id": "q_missing"}, "quote_id"),
    ],
)
async def test_a_server_tool_with_bad_parameters_is_422_naming_them(
    el_hub: InProcessHub, http: httpx.AsyncClient, name: str, params: dict[str, Any], named: str
) -> None:
    sid, tok, ui = await _session(el_hub)
    secret = {"X-Companion-Tool-Secret": TOOL_SECRET}
    if name == "create_shipping_label":
        ok = await http.post(
            _tool_url(), json={**QUOTE_PARAMS, "session_id": capability(sid)}, headers=secret
        )
        assert ok.status_code == 200
    before = await _version(http, sid, tok)
    reply = await http.post(
        _tool_url(name), json={**params, "session_id": capability(sid)}, headers=secret
    )
    assert reply.status_code == 422, reply.text
    error = reply.json()["error"]
    assert error["code"] == "tool_failed" and named in error["message"]
    assert await _version(http, sid, tok) == before
    await ui.close()


async def test_a_server_tool_call_needs_a_known_tool_and_a_live_session(
    el_hub: InProcessHub, http: httpx.AsyncClient
) -> None:
    sid, _, ui = await _session(el_hub)
    secret = {"X-Companion-Tool-Secret": TOOL_SECRET}
    unknown = await http.post(
        _tool_url("nope"), json={"session_id": capability(sid)}, headers=secret
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "tool_not_found"
    missing = await http.post(_tool_url(), json=QUOTE_PARAMS, headers=secret)
    assert missing.status_code == 400 and "session_id" in missing.json()["error"]["message"]
    gone_cap = capability("gone")
    gone = await http.post(
        _tool_url(), json={**QUOTE_PARAMS, "session_id": gone_cap}, headers=secret
    )
    assert gone.status_code == 410
    odd = {**QUOTE_PARAMS, "session_id": capability(sid), "tool_call_id": "a\r\nX-Evil: 1"}
    refused = await http.post(_tool_url(), json=odd, headers=secret)
    assert refused.status_code == 400 and "tool_call_id" in refused.json()["error"]["message"]
    # An id used by one session is not another session's.
    other_sid, _, other_ui = await _session(el_hub)
    key = {**secret, "Idempotency-Key": f"idem-{uuid.uuid4().hex}"}
    ok = await http.post(
        _tool_url(), json={**QUOTE_PARAMS, "session_id": capability(sid)}, headers=key
    )
    assert ok.status_code == 200
    stolen = await http.post(
        _tool_url(), json={**QUOTE_PARAMS, "session_id": capability(other_sid)}, headers=key
    )
    assert stolen.status_code == 409 and stolen.json()["error"]["code"] == "session_mismatch"
    await ui.close()
    await other_ui.close()


# ---------------------------------------------------------------- post-call webhook


async def test_a_signed_post_call_webhook_is_stored_and_broadcast(
    el_hub: InProcessHub, http: httpx.AsyncClient
) -> None:
    sid, tok, ui = await _session(el_hub)
    body = post_call_body(sid, "conv_stored")
    headers = {"ElevenLabs-Signature": sign(body, WEBHOOK_SECRET)}
    reply = await http.post("/elevenlabs/post-call", content=body, headers=headers)
    assert reply.status_code == 200, reply.text
    answer = reply.json()
    assert answer["stored"] is True and answer["session_id"] == sid

    frame = await ui.recv_until(lambda f: f.get("text") == "conversation_ended")
    assert frame["seq"] == answer["seq"] and frame["sender"] == "elevenlabs:post-call"
    assert frame["data"] == {
        "conversation_id": "conv_stored",
        "agent_id": "agent_test",
        "event_timestamp": json.loads(body)["event_timestamp"],
        "status": "done",
        "transcript_summary": "The user got quotes and chose FedEx Ground.",
        "call_successful": "success",
        "call_duration_secs": 42,
        "termination_reason": "end_call tool",
        "turns": 2,
    }
    history = await _history(http, sid, tok)
    stored = [e for e in history if e.get("text") == "conversation_ended"]
    assert stored == [frame]

    # A redelivery (our 200 lost on the way) is answered, not stored twice.
    again = await http.post(
        "/elevenlabs/post-call",
        content=body,
        headers={"ElevenLabs-Signature": sign(body, WEBHOOK_SECRET)},
    )
    assert again.status_code == 200 and again.json()["duplicate"] is True
    assert [e for e in await _history(http, sid, tok) if e.get("text") == "conversation_ended"] == [
        frame
    ]
    await ui.close()


async def test_a_signed_post_call_body_without_a_conversation_id_is_applied_once(
    el_hub: InProcessHub, http: httpx.AsyncClient
) -> None:
    """docs/protocol.md section 7 (v1.2): the same signed body, replayed within the
    signature's tolerance, is stored once; the replays are answered ``duplicate``."""
    sid, tok, ui = await _session(el_hub)
    payload = json.loads(post_call_body(sid))
    del payload["data"]["conversation_id"]
    body = json.dumps(payload).encode()
    headers = {"ElevenLabs-Signature": sign(body, WEBHOOK_SECRET)}
    answers = [
        (await http.post("/elevenlabs/post-call", content=body, headers=headers)).json()
        for _ in range(3)
    ]
    assert answers[0]["stored"] is True, answers
    assert [a.get("duplicate") for a in answers[1:]] == [True, True], answers
    assert not any(a["stored"] for a in answers[1:])
    # Signed again later (a redelivery with a new timestamp): the same body, still once.
    resigned = {"ElevenLabs-Signature": sign(body, WEBHOOK_SECRET, int(time.time()) - 5)}
    again = await http.post("/elevenlabs/post-call", content=body, headers=resigned)
    assert again.status_code == 200 and again.json()["duplicate"] is True
    history = await _history(http, sid, tok)
    ended = [e for e in history if e.get("text") == "conversation_ended"]
    assert len(ended) == 1 and ended[0]["seq"] == answers[0]["seq"]
    assert await _version(http, sid, tok) == 0  # no conversation id: no state patch
    await ui.close()


async def test_a_signed_post_call_body_nested_past_64_levels_is_refused(
    el_hub: InProcessHub, http: httpx.AsyncClient
) -> None:
    """Section 4: JSON deeper than 64 levels is refused on every door, the signed
    webhook's body included (it is decoded with the depth check, as every door)."""
    sid, tok, ui = await _session(el_hub)
    payload = json.loads(post_call_body(sid))
    deep: object = "bottom"
    for _ in range(100):
        deep = [deep]
    payload["data"]["analysis"] = deep
    body = json.dumps(payload).encode()
    headers = {"ElevenLabs-Signature": sign(body, WEBHOOK_SECRET)}
    answer = await http.post("/elevenlabs/post-call", content=body, headers=headers)
    assert answer.status_code == 400, answer.text
    assert answer.json()["error"]["code"] == "invalid_message"
    history = await _history(http, sid, tok)
    assert not [e for e in history if e.get("text") == "conversation_ended"]
    await ui.close()


def _signatures(body: bytes) -> dict[str, dict[str, str]]:
    now = int(time.time())
    good = sign(body, WEBHOOK_SECRET, now)
    return {
        "missing header": {},
        "empty header": {"ElevenLabs-Signature": ""},
        "wrong secret": {"ElevenLabs-Signature": sign(body, "another-secret-0123456789", now)},
        "tampered digest": {"ElevenLabs-Signature": good[:-1] + ("0" if good[-1] != "0" else "1")},
        "stale timestamp": {"ElevenLabs-Signature": sign(body, WEBHOOK_SECRET, now - 1801)},
        "future timestamp": {"ElevenLabs-Signature": sign(body, WEBHOOK_SECRET, now + 600)},
        "no digest": {"ElevenLabs-Signature": f"t={now}"},
        "no timestamp": {"ElevenLabs-Signature": good.split(",", 1)[1]},
        "signed another body": {"ElevenLabs-Signature": sign(body + b" ", WEBHOOK_SECRET, now)},
    }


@pytest.mark.parametrize("case", list(_signatures(b"")))
async def test_a_badly_signed_post_call_webhook_is_refused_and_stores_nothing(
    el_hub: InProcessHub, http: httpx.AsyncClient, case: str
) -> None:
    sid, tok, ui = await _session(el_hub)
    before = await _history(http, sid, tok)
    body = post_call_body(sid)
    reply = await http.post("/elevenlabs/post-call", content=body, headers=_signatures(body)[case])
    assert reply.status_code == 401, reply.text
    assert reply.json()["error"]["code"] == "unauthorized"
    assert await _history(http, sid, tok) == before
    await ui.close()


async def test_an_ended_session_still_gets_its_conversation_outcome(
    el_hub: InProcessHub, http: httpx.AsyncClient
) -> None:
    sid, tok, ui = await _session(el_hub)
    ended = await http.delete(f"/sessions/{sid}", headers=_auth(tok))
    assert ended.status_code == 200
    body = post_call_body(sid)
    reply = await http.post(
        "/elevenlabs/post-call",
        content=body,
        headers={"ElevenLabs-Signature": sign(body, WEBHOOK_SECRET)},
    )
    assert reply.status_code == 200 and reply.json()["stored"] is True
    history = await _history(http, sid, tok)
    # The outcome is recorded in the state with the webhook's ledger row (one commit),
    # then announced: the state change, then the update.
    assert [e["type"] for e in history][-3:] == [
        "session_ended",
        "session_state_updated",
        "contextual_update",
    ]
    assert history[-1]["text"] == "conversation_ended"
    await ui.close()


async def test_a_post_call_webhook_for_no_known_session_is_still_200(
    http: httpx.AsyncClient,
) -> None:
    body = post_call_body("no-such-session")
    reply = await http.post(
        "/elevenlabs/post-call",
        content=body,
        headers={"ElevenLabs-Signature": sign(body, WEBHOOK_SECRET)},
    )
    assert reply.status_code == 200 and reply.json()["stored"] is False
    audio = json.dumps({"type": "post_call_audio", "data": {"full_audio": "AAAA"}}).encode()
    reply = await http.post(
        "/elevenlabs/post-call",
        content=audio,
        headers={"ElevenLabs-Signature": sign(audio, WEBHOOK_SECRET)},
    )
    assert reply.status_code == 200 and reply.json()["stored"] is False


def test_our_signatures_are_what_the_elevenlabs_sdk_verifies() -> None:
    """The SDK's own verifier (``webhooks.construct_event``) accepts ``sign``'s header."""
    from elevenlabs.client import ElevenLabs

    body = post_call_body("s-1")
    event = ElevenLabs(api_key="unused").webhooks.construct_event(
        body.decode(), sign(body, WEBHOOK_SECRET), WEBHOOK_SECRET
    )
    variables = event["data"]["conversation_initiation_client_data"]["dynamic_variables"]
    assert tokens.verify_capability(variables["session_id"]).session_scope == "s-1"
    assert variables["system__agent_id"] == "agent_test"


# ---------------------------------------------------------------- backend events


async def test_a_backend_publishes_into_a_session_and_learns_its_seq(
    el_hub: InProcessHub, http: httpx.AsyncClient
) -> None:
    sid, tok, ui = await _session(el_hub)
    callers = {
        "owner": tok,
        "admin": token("ops", admin=True),
        "service": token("billing-backend", service=True),
    }
    for who, caller in callers.items():
        reply = await http.post(
            f"/sessions/{sid}/events",
            json={"text": "pickup_scheduled", "data": {"by": who}},
            headers=_auth(caller),
        )
        assert reply.status_code == 201, (who, reply.text)
        frame = await ui.recv_until(lambda f: f.get("text") == "pickup_scheduled")
        assert frame["data"] == {"by": who}
        assert frame["seq"] == reply.json()["seq"]
    stranger = await http.post(
        f"/sessions/{sid}/events", json={"text": "hi"}, headers=_auth(token(new_user()))
    )
    assert stranger.status_code == 403
    nobody = await http.post(f"/sessions/{sid}/events", json={"text": "hi"})
    assert nobody.status_code == 401
    await ui.close()


async def test_the_tools_and_the_webhook_take_only_the_sessions_capability(
    el_hub: InProcessHub, http: httpx.AsyncClient
) -> None:
    """Whoever starts an ElevenLabs conversation chooses its dynamic variables: a bare
    session id (shown in the page and in links) runs nothing and stores nothing."""
    sid, tok, ui = await _session(el_hub)
    secret = {"Authorization": f"Bearer {TOOL_SECRET}"}
    bare = await http.post(_tool_url(), json={**QUOTE_PARAMS, "session_id": sid}, headers=secret)
    assert bare.status_code == 401 and "capability" in bare.json()["error"]["message"]
    other = tokens.mint_capability("owner", "another-session", 3600)
    wrong = await http.post(_tool_url(), json={**QUOTE_PARAMS, "session_id": other}, headers=secret)
    assert wrong.status_code == 410  # no live session of that capability
    payload = json.loads(post_call_body(sid))
    payload["data"]["conversation_initiation_client_data"]["dynamic_variables"]["session_id"] = sid
    body = json.dumps(payload).encode()
    reply = await http.post(
        "/elevenlabs/post-call",
        content=body,
        headers={"ElevenLabs-Signature": sign(body, WEBHOOK_SECRET)},
    )
    assert reply.status_code == 200 and reply.json()["stored"] is False
    assert "capability" in reply.json()["note"]
    assert await _version(http, sid, tok) == 0  # nothing ran
    await ui.close()
