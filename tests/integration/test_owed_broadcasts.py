"""What was promised is delivered (docs/protocol.md section 4): a hub killed between a tool
call's commit and its broadcasts (a failpoint's ``os._exit``, as abrupt as ``kill -9``)
leaves what it owed in the database, and the next process publishes it exactly once, in
order: on the retry of the same ``tool_call_id``, or by its sweep when nobody retries.
The mechanism's rules: tests/inproc/test_owed.py."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from companion_ws.grpc.v1 import companion_pb2 as pb
from tests.support.backends import bearer, grpc_api, grpc_hub, new_session, status_of
from tests.support.frames import history_over_http, new_user, tool_answer, tool_call
from tests.support.hub import REDIS_URL, HubProcess, token
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


def _armed(
    db_url: str, tmp_path: Path, point: str, env: dict[str, str] | None = None
) -> HubProcess:
    """A hub that dies at ``point`` (not started)."""
    return HubProcess(
        database_url=db_url,
        env={**FAST, **(env or {}), "COMPANION_FAILPOINTS": point},
        log_path=tmp_path / "hub.log",
    )


@contextlib.asynccontextmanager
async def _started(*hubs: HubProcess) -> AsyncIterator[None]:
    """``hubs`` started side by side (a start mostly waits); killed after, whatever
    happened (an armed hub has died by then, unless the test failed first)."""
    try:
        await asyncio.gather(*(asyncio.to_thread(hub.start) for hub in hubs))
        yield
    finally:
        for hub in hubs:
            hub.kill()


async def _crash_during_a_call(crashing: HubProcess) -> tuple[str, str, str, int]:
    """A started hub armed to die gets a quote call: (sub's token, session, id, port)."""
    tok = token(new_user())
    ws = await connect(crashing.ws_url, tok)
    sid = ws.welcome["session_id"]
    call = tool_call("get_shipping_quotes", QUOTE_PARAMS)
    await ws.send(call)
    assert crashing.wait() == 86  # failpoints.EXIT_CODE: it died where it was told to
    await ws.close()
    return tok, sid, call["client_tool_call"]["tool_call_id"], crashing.port


@pytest.mark.parametrize("broker", ["memory://", REDIS_URL])
async def test_a_retry_after_a_crash_between_commit_and_publish_publishes_what_was_owed(
    db_url: str, tmp_path: Path, broker: str
) -> None:
    """The retry goes to the next process (on Redis, as to the other hub of a pair)."""
    env = {**FAST, "COMPANION_BROKER_URL": broker}
    crashing = _armed(db_url, tmp_path, "after_ledger", env)
    async with _started(crashing):
        tok, sid, call_id, port = await _crash_during_a_call(crashing)
    hub = HubProcess(database_url=db_url, env=env, port=port, log_path=tmp_path / "hub.log")
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


async def _crash_during_a_state_change(crashing: HubProcess) -> tuple[str, str]:
    """``PATCH /state`` commits, the hub dies before the broadcast: (token, session)."""
    tok = token(new_user())
    auth = {"Authorization": f"Bearer {tok}"}
    async with httpx.AsyncClient(base_url=crashing.base_url, timeout=15) as http:
        sid = (await http.post("/sessions", headers=auth)).json()["session_id"]
        with pytest.raises(httpx.HTTPError):
            await http.patch(f"/sessions/{sid}/state", json={"a": 1}, headers=auth)
    assert crashing.wait() == 86
    return tok, sid


def _changes(events: list[dict[str, Any]]) -> list[tuple[int, Any]]:
    return [(e["version"], e["patch"]) for e in events if e["type"] == "session_state_updated"]


async def test_what_a_crash_left_owed_is_swept_once_without_a_retry(
    db_url: str, tmp_path: Path
) -> None:
    """Nobody retries; the restarted hub's sweep finds what is owed. Killed after a tool
    call's commit: it publishes the call's frames. Killed after they were published but
    before they were settled: it sees them in the history and publishes nothing again.
    Killed after a state change's commit: it publishes ``session_state_updated``."""
    points = ("after_publish", "after_ledger", "after_state_commit")
    hubs = [_armed(db_url, tmp_path, point) for point in points]
    async with _started(hubs[0]), _started(*hubs[1:]):  # the first migrates a new file
        runs = [(await _crash_during_a_call(hub))[:2] for hub in hubs[:2]]
        state_tok, state_sid = await _crash_during_a_state_change(hubs[2])
    hub = HubProcess(database_url=db_url, env=FAST, log_path=tmp_path / "hub.log").start()
    try:
        async with httpx.AsyncClient(base_url=hub.base_url, timeout=15) as http:

            async def seen() -> tuple[list[list[str]], list[tuple[int, Any]]]:
                calls = [_kinds(await history_over_http(http, s, t, 100)) for t, s in runs]
                state = await history_over_http(http, state_sid, state_tok, 100)
                return calls, _changes(state)

            async with asyncio.timeout(10):  # a bound on waiting, never on speed
                while await seen() != ([ORDER, ORDER], [(1, {"a": 1})]):  # noqa: ASYNC110
                    await asyncio.sleep(0.1)
            await asyncio.sleep(1.0)  # two sweeps more: still once each
            assert await seen() == ([ORDER, ORDER], [(1, {"a": 1})])
    finally:
        hub.stop()


async def test_a_backend_publish_redelivered_after_a_crash_past_its_publish_is_not_published_twice(
    tmp_path: Path,
) -> None:
    """gRPC ``Publish`` with an idempotency key: the hub dies after the event is out and
    before its receipt. The redelivery, once the claim is stale, finds the owed frame in
    the history: it answers that event's seq and publishes nothing again."""
    key = pb.PublishRequest(
        session_id="",
        type="contextual_update",
        data_json=json.dumps({"text": "once"}),
        idempotency_key="k1",
    )
    with grpc_hub(tmp_path, {"COMPANION_FAILPOINTS": "after_backend_publish"}) as (hub, port):
        sid = await new_session(hub)
        key.session_id = sid
        async with grpc_api(port) as api:
            assert await status_of(api.Publish(key, metadata=bearer())) is not None
        assert hub.wait() == 86
    with grpc_hub(tmp_path, {"COMPANION_BUS_ACK_WAIT": "0.3"}) as (hub, port):
        await asyncio.sleep(0.4)  # the dead process's claim is stale
        async with grpc_api(port) as api:
            first = await api.Publish(key, metadata=bearer())
            again = await api.Publish(key, metadata=bearer())
        assert (again.seq, again.duplicate) == (first.seq, True)
        async with httpx.AsyncClient(base_url=hub.base_url, timeout=15) as http:
            events = await history_over_http(http, sid, token("alice"), 100)
        said = [e for e in events if e.get("text") == "once"]
        assert [e["seq"] for e in said] == [first.seq]  # published once, before the crash
