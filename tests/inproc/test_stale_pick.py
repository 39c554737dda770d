"""No stale write wins (docs/protocol.md sections 3 and 10, issue 23): a pick carries the
version its screen showed and a stale one is refused ``version_conflict``; once the
label is made, the shipping pack refuses any other pick (``state_refused``, with the
reason), from every door, even without a version; new quotes open picking again."""

from __future__ import annotations

import json
from typing import Any

from tests.support.frames import new_user, tool_answer, tool_call
from tests.support.hub import token
from tests.support.inproc import InProcessHub, InProcessWS

QUOTE_PARAMS = {"from_zip": "90210", "to_zip": "10001", "weight": 5}


async def _quoted(hub: InProcessHub) -> tuple[str, InProcessWS, list[dict[str, Any]]]:
    tok = token(new_user())
    agent = await hub.connect(tok, client="agent")
    answer = await tool_answer(agent, tool_call("get_shipping_quotes", QUOTE_PARAMS))
    assert answer["is_error"] is False, answer
    return tok, agent, json.loads(answer["result"])["quotes"]


async def _pick(ws: InProcessWS, quote: dict[str, Any], **extra: Any) -> dict[str, Any]:
    patch = {"selected_option": quote, "ui": {"current_step": "selected"}}
    return await ws.request({"type": "update_session_state", "patch": patch, **extra})


async def test_a_pick_made_on_an_older_version_is_not_applied(
    shared_inproc: InProcessHub,
) -> None:
    tok, agent, quotes = await _quoted(shared_inproc)
    sid = agent.welcome["session_id"]
    phone = await shared_inproc.connect(tok, session_id=sid)
    laptop = await shared_inproc.connect(tok, session_id=sid)
    seen = (await phone.request({"type": "get_session_state"}))["version"]

    assert (await _pick(laptop, quotes[0], expected_version=seen))["type"] == (
        "session_state_updated"
    )
    stale = await _pick(phone, quotes[1], expected_version=seen)  # queued while offline
    assert stale["type"] == "error" and stale["code"] == "version_conflict", stale
    assert stale["version"] == seen + 1
    state = await phone.request({"type": "get_session_state"})
    assert state["state"]["selected_option"]["quote_id"] == quotes[0]["quote_id"]


async def test_a_pick_after_the_label_is_refused_with_the_reason_on_every_door(
    shared_inproc: InProcessHub,
) -> None:
    tok, agent, quotes = await _quoted(shared_inproc)
    sid = agent.welcome["session_id"]
    screen = await shared_inproc.connect(tok, session_id=sid)
    made = await tool_answer(
        agent, tool_call("create_shipping_label", {"quote_id": quotes[0]["quote_id"]})
    )
    assert made["is_error"] is False, made
    tracking = json.loads(made["result"])["label"]["tracking_number"]
    before = await screen.request({"type": "get_session_state"})

    # no version at all, the newest one: still refused, by the pack's rule
    for extra in ({}, {"expected_version": before["version"]}):
        refused = await _pick(screen, quotes[1], **extra)
        assert refused["type"] == "error" and refused["code"] == "state_refused", refused
        assert tracking in refused["message"] and "new quotes" in refused["message"]
    over_http = await shared_inproc.http.patch(
        f"/sessions/{sid}/state",
        json={"selected_option": quotes[1]},
        headers={"Authorization": f"Bearer {tok}"},
    )
    assert over_http.status_code == 409, over_http.text
    assert over_http.json()["error"]["code"] == "state_refused"
    after = await screen.request({"type": "get_session_state"})
    assert after["version"] == before["version"] and after["state"] == before["state"]

    # picking the labelled rate again changes nothing that matters: allowed
    same = await _pick(screen, quotes[0])
    assert same["type"] == "session_state_updated", same
    # new quotes clear the label: picking is open again
    again = await tool_answer(agent, tool_call("get_shipping_quotes", QUOTE_PARAMS))
    assert again["is_error"] is False
    assert (await _pick(screen, quotes[1]))["type"] == "session_state_updated"
