"""Per-connection message rate, per-user connection cap, and allowed browser origins."""

from __future__ import annotations

import functools
from typing import Any

import websockets

from tests.support.hub import HubFactory, token
from tests.support.ws import connect


def _answers(request_id: str, frame: dict[str, Any]) -> bool:
    return frame.get("requestId") == request_id


async def test_a_flood_is_answered_rate_limited_and_the_connection_stays_open(
    hub_factory: HubFactory,
) -> None:
    hub = hub_factory(
        env={"COMPANION_RATE_LIMIT_PER_SECOND": "1", "COMPANION_RATE_LIMIT_BURST": "5"}
    ).start()
    ws = await connect(hub.ws_url, token("alice"))
    for i in range(20):
        await ws.send({"type": "ping", "requestId": f"p{i}"})
    replies = []
    for i in range(20):
        replies.append(await ws.recv_until(functools.partial(_answers, f"p{i}")))
    kinds = [r["type"] for r in replies]
    assert kinds.count("pong") <= 6
    limited = [r for r in replies if r["type"] == "error"]
    assert limited and all(r["code"] == "rate_limited" for r in limited)
    assert ws.conn.close_code is None  # still open
    await ws.close()


async def test_too_many_connections_for_one_user_close_4429(hub_factory: HubFactory) -> None:
    hub = hub_factory(env={"COMPANION_MAX_CONNECTIONS_PER_USER": "2"}).start()
    first = await connect(hub.ws_url, token("alice"))
    second = await connect(hub.ws_url, token("alice"), session_id=first.welcome["session_id"])
    third = await connect(hub.ws_url, token("alice"), expect_welcome=False)
    error = await third.recv()
    assert error["type"] == "error" and error["code"] == "rate_limited"
    assert (await third.closed())[0] == 4429
    other_user = await connect(hub.ws_url, token("bob"))  # the cap is per user
    for ws in (first, second, other_user):
        await ws.close()


async def test_only_allowed_origins_may_connect(hub_factory: HubFactory) -> None:
    hub = hub_factory(env={"COMPANION_ALLOWED_ORIGINS": "https://app.example"}).start()
    ok = await connect(hub.ws_url, token("alice"), headers={"Origin": "https://app.example"})
    await ok.close()
    bad = await connect(
        hub.ws_url, token("alice"), headers={"Origin": "https://evil.example"}, expect_welcome=False
    )
    error = await bad.recv()
    assert error["code"] == "forbidden"
    assert (await bad.closed())[0] == 4403
    # Non-browser clients send no Origin: the token alone decides.
    raw = await websockets.connect(
        f"{hub.ws_url}/ws", additional_headers={"Authorization": f"Bearer {token('alice')}"}
    )
    assert '"session_joined"' in str(await raw.recv())
    await raw.close()
