"""``client_tool_call`` across real hub processes (docs/protocol.md sections 3 and 10): one
effect per ``tool_call_id`` on two processes, and a hub that cannot load a tool module
does not start. The rules of a tool call: tests/inproc/test_tools.py."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.frames import new_user, tool_answer, tool_call
from tests.support.hub import HubFactory, HubProcess, token
from tests.support.ws import connect

QUOTE_PARAMS = {"from_zip": "90210", "to_zip": "10001", "weight": 5}


async def _state(hub: HubProcess, sid: str, tok: str) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=hub.base_url) as http:
        reply = await http.get(f"/sessions/{sid}/state", headers={"Authorization": f"Bearer {tok}"})
    assert reply.status_code == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


# Needs a process: two hub processes on one database race for the same tool_call_id.
@pytest.mark.every_store
async def test_one_id_on_two_hub_processes_has_one_effect(
    hub_factory: HubFactory, tmp_path: Path
) -> None:
    """Two processes on one database (no shared broker needed for the ledger)."""
    first = hub_factory().start()
    second = hub_factory().start()
    tok = token(new_user())
    a = await connect(first.ws_url, tok)
    sid = a.welcome["session_id"]
    b = await connect(second.ws_url, tok, session_id=sid)
    watchers = [await connect(h.ws_url, tok, session_id=sid) for h in (first, second)]
    rounds = 8
    for i in range(rounds):
        frame = tool_call("get_shipping_quotes", {**QUOTE_PARAMS, "weight": 1 + i})
        ra, rb = await asyncio.gather(tool_answer(a, frame), tool_answer(b, frame))
        assert ra["type"] == rb["type"] == "client_tool_result", (ra, rb)
        assert ra["is_error"] is False and ra["result"] == rb["result"], (ra, rb)
    assert (await _state(first, sid, tok))["version"] == rounds
    # Each process frames what it ran: every tool_call_started it broadcast is followed
    # by its tool_call_finished, also for a run that lost the race to the other process.
    open_runs: list[set[str]] = []
    finished = 0
    for watcher, sender in zip(watchers, (a, b), strict=True):
        marker = uuid.uuid4().hex
        await sender.send({"type": "contextual_update", "text": marker})
        running: set[str] = set()
        while (seen := await watcher.recv(10)).get("text") != marker:
            if seen["type"] == "tool_call_started":
                running.add(seen["tool_call_id"])
            elif seen["type"] == "tool_call_finished":
                assert seen["is_error"] is False, seen  # the winner's result, either way
                running.remove(seen["tool_call_id"])
                finished += 1
        open_runs.append(running)
    assert open_runs == [set(), set()]
    assert finished >= rounds  # each round's winner finished its run
    for ws in (a, b, *watchers):
        await ws.close()


# Needs a process: the hub's exit status and its log on a failed start.
async def test_a_broken_tool_module_fails_the_start_with_a_clear_message(
    hub_factory: HubFactory,
) -> None:
    hub = hub_factory(env={"COMPANION_TOOLS": "companion_ws.tools.shipping,no_such_tools_pack"})
    with pytest.raises(RuntimeError, match="exited with 2"):
        hub.start()
    assert hub.log_path is not None
    assert "cannot load tool module 'no_such_tools_pack'" in hub.log_path.read_text()
