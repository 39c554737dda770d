"""The operator's page (issue 12, item 6), on the in-process hub: ``/admin`` carries every
page's headers, and ``/admin/stats`` answers admins only, with totals that move with the
traffic."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import httpx

from companion_ws.endpoints.ui import PAGE_HEADERS
from tests.support.frames import new_user, tool_call
from tests.support.hub import token
from tests.support.inproc import InProcessHub

ADMIN = {"Authorization": f"Bearer {token('ops', admin=True)}"}


def _saying(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda frame: frame.get("text") == text


async def _stats(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/admin/stats", headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


async def test_the_page_carries_every_page_header_and_loads_only_its_own_assets(
    shared_inproc: InProcessHub,
) -> None:
    http = shared_inproc.http
    for path in ("/admin", "/admin?token=abc&session_id=x"):
        page = await http.get(path)
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        for name, value in PAGE_HEADERS.items():
            assert page.headers[name] == value, name
        assert "unsafe-inline" not in page.headers["content-security-policy"]
    html = page.text
    assert "<style" not in html and " style=" not in html  # no inline style...
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)  # ...and no inline script
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # no third party
    for asset in re.findall(r"""(?:src|href)="(/static/[^"]+)\"""", html):
        answer = await http.get(asset)
        assert answer.status_code == 200, asset
        assert answer.headers["x-content-type-options"] == "nosniff"


async def test_stats_refuse_no_token_and_a_non_admin(shared_inproc: InProcessHub) -> None:
    http = shared_inproc.http
    anonymous = await http.get("/admin/stats")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthorized"
    assert anonymous.headers["www-authenticate"] == "Bearer"
    user = await http.get("/admin/stats", headers={"Authorization": f"Bearer {token(new_user())}"})
    assert user.status_code == 403
    assert user.json()["error"]["code"] == "forbidden"
    bad = await http.get("/admin/stats", headers={"Authorization": "Bearer not-a-jwt"})
    assert bad.status_code == 401


async def test_stats_move_with_the_traffic(shared_inproc: InProcessHub) -> None:
    http = shared_inproc.http
    before = await _stats(http)
    assert set(before["counters"]) == {
        "connects",
        "frames_in",
        "events",
        "deliveries",
        "slow_consumer_closes",
        "tool_calls",
        "errors",
    }
    assert all(isinstance(v, int) and v >= 0 for v in before["counters"].values())

    owner = token(new_user())
    first = await shared_inproc.connect(owner)
    second = await shared_inproc.connect(owner, session_id=first.welcome["session_id"])
    try:
        during = await _stats(http)
        assert during["connections"] >= before["connections"] + 2
        for n in range(3):
            text = f"hello {n}"
            await first.send({"type": "contextual_update", "text": text, "data": {}})
            await second.recv_until(_saying(text))
        await first.send(
            tool_call("get_shipping_quotes", {"from_zip": "90210", "to_zip": "10001", "weight": 5})
        )
        result = await first.recv_type("client_tool_result")
        assert result["is_error"] is False, result
        after = await _stats(http)
    finally:
        await first.close()
        await second.close()

    moved = {k: after["counters"][k] - before["counters"][k] for k in before["counters"]}
    assert moved["connects"] >= 2
    assert moved["events"] >= 3 + 2  # three updates, two joins (and the tool's events)
    assert moved["deliveries"] >= 6  # each update to both clients
    assert moved["frames_in"] >= 4
    assert moved["tool_calls"] >= 1
    assert after["breakdown"]["events"]["contextual_update"] >= 3
    assert after["breakdown"]["tool_calls"].get("ok", 0) >= 1
    assert after["breakdown"]["connects"].get("ok", 0) >= 2
    assert after["timestamp"] >= before["timestamp"]
