"""What was promised is delivered (docs/protocol.md section 4): a hub killed between a tool
call's commit and its broadcasts (a failpoint's ``os._exit``, as abrupt as ``kill -9``)
leaves what it owed in the database, and the next process publishes it exactly once, in
order: on the retry of the same ``tool_call_id``, or by its sweep when nobody retries.
The mechanism's rules: tests/inproc/test_owed.py."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx

from tests.support.frames import history_over_http, new_user, tool_answer, tool_call
from tests.support.hub import HubProcess, token
from tests.support.ws import connect

QUOTE_PARAMS = {"from_zip": "90210", "to_zip": "10001", "weight": 5}
FAST = {"COMPANION_OWED_LEASE": "0.5"}  # a test's lease: the sweep comes within a second


def _kinds(events: list[dict[str, Any]]) -> list[str]:
    """The tool run's events, in seq order: started, state, quote_ready, finished."""
    out = []
    for e in sorted(events, key=lambda e: e["seq"]):
        if e["type"] == "contextual_update":
            out.append(e["text"])
        elif e["type"] != "client_joined" and e["type"] != "client_left":
            out.append(e["type"])
    return out


ORDER = ["tool_call_started", "session_state_updated", "quote_ready", "tool_call_finished"]


async def _crash_during_a_call(
    db_url: str, tmp_path: Path, point: str
) -> tuple[str, str, str, int]:
    """A hub armed to die at ``point`` gets a quote call: (sub's token, session, id, port)."""
    crashing = HubProcess(
        database_url=db_url,
        env={**FAST, "COMPANION_FAILPOINTS": point},
        log_path=tmp_path / "hub.log",
    ).start()
    tok = token(new_user())
    ws = await connect(crashing.ws_url, tok)
    sid = ws.welcome["session_id"]
    call = tool_call("get_shipping_quotes", QUOTE_PARAMS)
    await ws.send(call)
    assert crashing.wait() == 86  # failpoints.EXIT_CODE: it died where it was told to
    await ws.close()
    return tok, sid, call["client_tool_call"]["tool_call_id"], crashing.port


async def test_a_retry_after_a_crash_between_commit_and_publish_publishes_what_was_owed(
    db_url: str, tmp_path: Path
) -> None:
    tok, sid, call_id, port = await _crash_during_a_call(db_url, tmp_path, "after_ledger")
    hub = HubProcess(database_url=db_url, env=FAST, port=port, log_path=tmp_path / "hub.log")
    hub.start()
    try:
        ws = await connect(hub.ws_url, tok, session_id=sid)
        for _ in range(2):  # the retry, and a retry of the retry
            answer = await tool_answer(ws, tool_call("get_shipping_quotes", QUOTE_PARAMS, call_id))
            assert answer["type"] == "client_tool_result" and not answer["is_error"], answer
        await ws.close()
        async with httpx.AsyncClient(base_url=hub.base_url, timeout=15) as http:
            events = await history_over_http(http, sid, tok, 100)
        assert _kinds(events) == ORDER  # each exactly once, in the effect's order
        state = next(e for e in events if e["type"] == "session_state_updated")
        assert state["version"] == 1
    finally:
        hub.stop()


async def test_a_crash_after_publishing_is_swept_without_publishing_twice(
    db_url: str, tmp_path: Path
) -> None:
    """Killed after the broadcasts, before they were settled: the restarted hub's sweep
    finds them owed, sees them in the history and publishes nothing again. Killed
    before them and never retried: the sweep publishes them."""
    tok, sid, _, port = await _crash_during_a_call(db_url, tmp_path, "after_publish")
    tok2, sid2, _, _ = await _crash_during_a_call(db_url, tmp_path, "after_ledger")
    hub = HubProcess(database_url=db_url, env=FAST, port=port, log_path=tmp_path / "hub.log")
    hub.start()
    try:
        async with httpx.AsyncClient(base_url=hub.base_url, timeout=15) as http:

            async def kinds() -> list[list[str]]:
                return [
                    _kinds(await history_over_http(http, s, t, 100))
                    for t, s in ((tok, sid), (tok2, sid2))
                ]

            async with asyncio.timeout(10):  # a bound on waiting, never on speed
                while (await kinds())[1] != ORDER:  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
            await asyncio.sleep(1.5)  # three sweeps more: still once each
            assert await kinds() == [ORDER, ORDER]
    finally:
        hub.stop()
