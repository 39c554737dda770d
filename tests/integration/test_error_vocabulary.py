"""One error vocabulary (issue 12): the protocol page lists every code the hub sends,
each is a code of the error tree, each is produced by some test; errors before a join
name no session; a WebSocket on another path gets the HTTP API's error shape."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import websockets

from companion_ws import errors
from tests.support.hub import HubProcess, token
from tests.support.ws import connect

ROOT = Path(__file__).resolve().parents[2]


def _documented() -> list[str]:
    text = (ROOT / "docs" / "protocol.md").read_text()
    table = text.split("| code | when | HTTP | close |", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^\| `([a-z_]+)` \|", table, flags=re.M)


def _tree() -> set[str]:
    return {
        cls.code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.CompanionError)
    }


def test_the_page_lists_exactly_the_codes_the_hub_can_send() -> None:
    documented = set(_documented())
    # Starlette's own 405 is answered in the same shape, with its own code.
    assert documented == _tree() | {"method_not_allowed"}


@pytest.mark.parametrize("code", _documented())
def test_every_documented_code_is_produced_by_some_test(code: str) -> None:
    tests = list((ROOT / "tests").rglob("test_*.py"))
    pattern = re.compile(rf"""["']{code}["']""")
    assert any(pattern.search(p.read_text()) for p in tests), f"no test expects {code!r}"


async def test_an_error_before_a_join_names_no_session(shared_hub: HubProcess) -> None:
    ws = await connect(shared_hub.ws_url, "not-a-token", expect_welcome=False)
    error = await ws.recv()
    assert error["type"] == "error" and error["code"] == "unauthorized"
    assert "session_id" not in error
    assert (await ws.closed())[0] == 4401


async def test_a_websocket_on_another_path_gets_the_http_error_shape(
    shared_hub: HubProcess,
) -> None:
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(f"{shared_hub.ws_url}/socket?token={token('alice')}")
    response = refused.value.response
    assert response.status_code == 404
    assert json.loads(response.body)["error"]["code"] == "not_found"


async def test_a_method_a_path_lacks_is_refused_and_the_allowed_ones_named(
    shared_hub: HubProcess,
) -> None:

    async with httpx.AsyncClient(base_url=shared_hub.base_url) as http:
        put = await http.put("/sessions", headers={"Authorization": f"Bearer {token('a')}"})
    assert put.status_code == 405 and put.json()["error"]["code"] == "method_not_allowed"
    assert set(put.headers["allow"].replace(" ", "").split(",")) == {"GET", "HEAD", "POST"}
