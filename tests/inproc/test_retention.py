"""Retention (docs/protocol.md section 4, *v1.1 retention*): the sweeper deletes sessions
that ended longer ago than ``COMPANION_RETENTION``, with their events, tool-call ledger
rows and join tokens, and join tokens that expired that long ago; everything newer
stays. On SQLite and PostgreSQL, with the hub in the test's process (the sweeper is a
task of the node); old rows are made by moving timestamps back."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from companion_ws.store.repositories import code_hash
from tests.support.frames import new_user, tool_call
from tests.support.hub import token
from tests.support.inproc import InProcessHub, InProcessWS, inprocess_hub

HOUR_MS = 3600 * 1000
QUOTE_PARAMS = {"from_zip": "90210", "to_zip": "10001", "weight": 5}


def _auth(user: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(user)}"}


async def _busy_session(
    hub: InProcessHub, http: httpx.AsyncClient, user: str
) -> tuple[str, InProcessWS]:
    """A session with state, events, a tool-call ledger row and a join token."""
    ws = await hub.connect(token(user))
    sid = ws.welcome["session_id"]
    reply = await ws.request({"type": "update_session_state", "key": "k", "value": 1})
    assert reply["type"] == "session_state_updated"
    await ws.send(tool_call("get_shipping_quotes", QUOTE_PARAMS))
    result = await ws.recv_type("client_tool_result")
    assert result["type"] == "client_tool_result" and not result["is_error"], result
    issued = await http.post(f"/sessions/{sid}/join-token", headers=_auth(user))
    assert issued.status_code == 201
    return sid, ws


async def _counts(db_url: str, sid: str) -> dict[str, int]:
    engine = create_async_engine(db_url)
    try:
        async with engine.connect() as conn:
            counts: dict[str, Any] = {}
            for table, column in (
                ("sessions", "id"),
                ("events", "session_id"),
                ("tool_calls", "session_id"),
                ("join_tokens", "session_id"),
            ):
                counts[table] = (
                    await conn.execute(
                        text(f"SELECT count(*) FROM {table} WHERE {column} = :sid"), {"sid": sid}
                    )
                ).scalar_one()
            return counts
    finally:
        await engine.dispose()


async def _execute(db_url: str, sql: str, **params: Any) -> None:
    engine = create_async_engine(db_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text(sql), params)
    finally:
        await engine.dispose()


async def test_the_sweeper_deletes_what_is_past_retention_and_keeps_the_rest(
    db_url: str,
) -> None:
    user = new_user()
    async with inprocess_hub(db_url, retention=3600.0, sweep_interval=0.2) as hub:
        http = hub.http
        old, old_ws = await _busy_session(hub, http, user)
        recent, recent_ws = await _busy_session(hub, http, user)
        live, live_ws = await _busy_session(hub, http, user)
        for sid, ws in ((old, old_ws), (recent, recent_ws)):
            assert (await http.delete(f"/sessions/{sid}", headers=_auth(user))).status_code == 200
            assert (await ws.closed())[0] == 4410
        await asyncio.sleep(0.5)  # the event log has written everything
        before = {sid: await _counts(db_url, sid) for sid in (old, recent, live)}
        for counts in before.values():
            assert all(n >= 1 for n in counts.values()), before
        # "old" ended two hours ago; "live" holds a join token that expired two hours ago
        # beside a fresh one.
        await _execute(
            db_url,
            "UPDATE sessions SET ended_at = ended_at - :shift WHERE id = :sid",
            shift=2 * HOUR_MS,
            sid=old,
        )
        fresh = await http.post(f"/sessions/{live}/join-token", headers=_auth(user))
        assert fresh.status_code == 201
        await _execute(
            db_url,
            "UPDATE join_tokens SET expires_at = expires_at - :shift "
            "WHERE session_id = :sid AND code_hash <> :keep",
            shift=2 * HOUR_MS,
            sid=live,
            keep=code_hash(fresh.json()["join_token"]),  # a code is stored as its hash
        )
        for _ in range(50):  # the sweeper runs every 0.2 s
            if not (await _counts(db_url, old))["sessions"]:
                break
            await asyncio.sleep(0.2)
        assert await _counts(db_url, old) == {
            "sessions": 0,
            "events": 0,
            "tool_calls": 0,
            "join_tokens": 0,
        }
        await asyncio.sleep(0.5)  # a few more sweeps
        assert await _counts(db_url, recent) == before[recent]
        after_live = await _counts(db_url, live)
        assert after_live["join_tokens"] == 1  # the expired one went, the fresh one stayed
        assert after_live["sessions"] == 1 and after_live["tool_calls"] == 1
        assert after_live["events"] >= before[live]["events"]
        # The hub goes on: the live session works, the deleted one is simply gone.
        reply = await live_ws.request({"type": "update_session_state", "key": "k", "value": 2})
        assert reply["type"] == "session_state_updated"
        assert (await http.get(f"/sessions/{old}", headers=_auth(user))).status_code == 404
        assert (await http.get(f"/sessions/{recent}", headers=_auth(user))).status_code == 200
    await live_ws.close()
