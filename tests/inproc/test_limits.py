"""Per-connection message rate, per-user connection cap, and allowed browser origins, on
the in-process hub: none of them needs a wire or a process."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from tests.support.hub import token
from tests.support.inproc import inprocess_hub


def _answers(request_id: str, frame: dict[str, Any]) -> bool:
    return frame.get("requestId") == request_id


async def test_a_flood_is_answered_rate_limited_and_the_connection_stays_open(
    db_url: str,
) -> None:
    async with inprocess_hub(db_url, rate_limit_per_second=1.0, rate_limit_burst=5) as hub:
        ws = await hub.connect(token("alice"))
        for i in range(20):
            await ws.send({"type": "ping", "requestId": f"p{i}"})
        replies = []
        for i in range(20):
            replies.append(await ws.recv_until(functools.partial(_answers, f"p{i}")))
        kinds = [r["type"] for r in replies]
        assert kinds.count("pong") <= 6
        limited = [r for r in replies if r["type"] == "error"]
        assert limited and all(r["code"] == "rate_limited" for r in limited)
        # still open: nothing more comes, no close either
        with pytest.raises(TimeoutError):
            await ws.recv(0.2)
        assert ws.close_code is None
        await ws.close()


async def test_too_many_connections_for_one_user_close_4429(db_url: str) -> None:
    async with inprocess_hub(db_url, max_connections_per_user=2) as hub:
        first = await hub.connect(token("alice"))
        second = await hub.connect(token("alice"), session_id=first.welcome["session_id"])
        third = await hub.connect(token("alice"), expect_welcome=False)
        error = await third.recv()
        assert error["type"] == "error" and error["code"] == "rate_limited"
        assert (await third.closed())[0] == 4429
        other_user = await hub.connect(token("bob"))  # the cap is per user
        for ws in (first, second, other_user):
            await ws.close()


async def test_only_allowed_origins_may_connect(db_url: str) -> None:
    async with inprocess_hub(db_url, allowed_origins=("https://app.example",)) as hub:
        ok = await hub.connect(token("alice"), headers={"Origin": "https://app.example"})
        await ok.close()
        bad = await hub.connect(
            token("alice"), headers={"Origin": "https://evil.example"}, expect_welcome=False
        )
        error = await bad.recv()
        assert error["code"] == "forbidden"
        assert (await bad.closed())[0] == 4403
        # Non-browser clients send no Origin: the token alone decides (here in the
        # handshake's Authorization header, as the websockets library sends it).
        raw = await hub.connect(None, headers={"Authorization": f"Bearer {token('alice')}"})
        assert raw.welcome["type"] == "session_joined"
        await raw.close()
