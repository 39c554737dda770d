"""The operator's page (issue 12, item 6): ``/admin`` carries every page's headers, and
``/admin/stats`` answers admins only, with totals that move with the traffic."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from companion_ws.endpoints.ui import PAGE_HEADERS
from tests.support.hub import HubProcess, token
from tests.support.ws import connect

ADMIN = {"Authorization": f"Bearer {token('ops', admin=True)}"}


def _user() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


@pytest.fixture
async def http(shared_hub: HubProcess) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=shared_hub.base_url, timeout=15) as client:
        yield client


def _saying(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda frame: frame.get("text") == text


async def _stats(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/admin/stats", headers=ADMIN)
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


async def test_the_page_carries_every_page_header_and_loads_only_its_own_assets(
    http: httpx.AsyncClient,
) -> None:
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


async def test_stats_refuse_no_token_and_a_non_admin(http: httpx.AsyncClient) -> None:
    anonymous = await http.get("/admin/stats")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "unauthorized"
    assert anonymous.headers["www-authenticate"] == "Bearer"
    user = await http.get("/admin/stats", headers={"Authorization": f"Bearer {token(_user())}"})
    assert user.status_code == 403
    assert user.json()["error"]["code"] == "forbidden"
    bad = await http.get("/admin/stats", headers={"Authorization": "Bearer not-a-jwt"})
    assert bad.status_code == 401


async def test_stats_move_with_the_traffic(shared_hub: HubProcess, http: httpx.AsyncClient) -> None:
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

    owner = token(_user())
    first = await connect(shared_hub.ws_url, owner)
    second = await connect(shared_hub.ws_url, owner, session_id=first.welcome["session_id"])
    try:
        during = await _stats(http)
        assert during["connections"] >= before["connections"] + 2
        for n in range(3):
            text = f"hello {n}"
            await first.send({"type": "contextual_update", "text": text, "data": {}})
            await second.recv_until(_saying(text))
        await first.send(
            {
                "type": "client_tool_call",
                "client_tool_call": {
                    "tool_name": "get_shipping_quotes",
                    "tool_call_id": f"toolu_{uuid.uuid4().hex[:12]}",
                    "parameters": {"from_zip": "90210", "to_zip": "10001", "weight": 5},
                },
            }
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
