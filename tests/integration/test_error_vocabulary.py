"""One vocabulary, one page (issues 12 and 30): docs/protocol.md lists every error code,
frame type, close code, HTTP route and ``COMPANION_*`` setting the code has, and
nothing the code lacks; each error code is produced by some test; errors before a join
name no session; a WebSocket on another path gets the HTTP API's error shape."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import httpx
import pytest
import websockets
from starlette.applications import Starlette
from starlette.routing import Mount, Route

from companion_ws.app import create_app
from companion_ws.protocol import errors
from companion_ws.protocol.closecodes import Close
from companion_ws.protocol.frames import BROADCAST_TYPES, DIRECT_TYPES
from companion_ws.protocol.messages import MESSAGE_TYPES
from companion_ws.settings import Settings
from tests.support.hub import SECRET, HubProcess, token
from tests.support.ws import connect

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "protocol.md"


def _tree() -> set[str]:
    return {
        cls.code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.CompanionError)
    }


def _error_codes() -> set[str]:
    # Starlette's own 405 is answered in the same shape, with its own code.
    return _tree() | {"method_not_allowed"}


def _settings() -> set[str]:
    return {f"COMPANION_{f.name.upper()}" for f in dataclasses.fields(Settings)}


def _routes() -> set[str]:
    """Every HTTP route the app serves, as ``METHOD /path`` (a mount: ``GET /path/…``)."""
    app = create_app(Settings(jwt_secret=SECRET, database_url="sqlite+aiosqlite://")).fallback
    while not isinstance(app, Starlette):  # under the middleware
        app = app.app  # type: ignore[attr-defined]
    served = set()
    for route in app.routes:
        if isinstance(route, Route):
            served |= {
                f"{method} {route.path}" for method in (route.methods or ()) if method != "HEAD"
            }
        elif isinstance(route, Mount):
            served.add(f"GET {route.path}/…")
    return served


def _quoted(cell: str) -> set[str]:
    return set(re.findall(r"`([^`]+)`", cell))


def _close_codes(cell: str) -> set[str]:
    return set(re.findall(r"\d{4}", cell))


def _routes_in(cell: str) -> set[str]:
    """`GET`, `PATCH /sessions/{id}/state` -> GET and PATCH /sessions/{session_id}/state."""
    names: set[str] = set()
    methods: list[str] = []
    for quoted in re.findall(r"`([^`]+)`", cell):
        method, _, path = quoted.partition(" ")
        methods.append(method)
        if path:
            path = path.replace("{id}", "{session_id}")
            names |= {f"{m} {path}" for m in methods}
            methods = []
    return names


class Vocabulary(NamedTuple):
    """What the code has (``in_code``) and the page's table that must list it: the
    table whose first row is ``header``; ``names`` reads the names in a row's first
    cell."""

    header: str
    in_code: Callable[[], set[str]]
    names: Callable[[str], set[str]] = _quoted


VOCABULARIES = {
    "error codes": Vocabulary("| code | when | HTTP | close |", _error_codes),
    "server frames": Vocabulary("| type | when |", lambda: set(BROADCAST_TYPES | DIRECT_TYPES)),
    "client frames": Vocabulary("| type | fields | effect |", lambda: set(MESSAGE_TYPES)),
    "close codes": Vocabulary(
        "| code | meaning | client should |", lambda: {str(int(c)) for c in Close}, _close_codes
    ),
    "HTTP routes": Vocabulary("| method, path | who | what |", _routes, _routes_in),
    "settings": Vocabulary("| variable | default | meaning |", _settings),
}


def documented(
    header: str, names: Callable[[str], set[str]] = _quoted, text: str | None = None
) -> set[str]:
    """The names in the first cells of the one table of the page headed ``header``."""
    text = PAGE.read_text() if text is None else text
    assert text.count(f"\n{header}\n") == 1, f"docs/protocol.md needs one table {header!r}"
    table = text.split(f"\n{header}\n", 1)[1].split("\n\n", 1)[0]
    rows = table.splitlines()[1:]  # past the |---| line
    return {name for row in rows for name in names(row.split("|")[1])}


@pytest.mark.parametrize("name", VOCABULARIES)
def test_the_page_lists_exactly_what_the_code_has(name: str) -> None:
    vocabulary = VOCABULARIES[name]
    in_code = vocabulary.in_code()
    on_page = documented(vocabulary.header, vocabulary.names)
    missing = sorted(in_code - on_page)
    assert not missing, f"{name} in the code, missing from docs/protocol.md: {missing}"
    stale = sorted(on_page - in_code)
    assert not stale, f"{name} in docs/protocol.md, not in the code: {stale}"


def test_a_missing_entry_is_seen() -> None:
    """The check above is not vacuous: a page without one setting's row fails it."""
    text = PAGE.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `COMPANION_TOOLS` |"))
    header = VOCABULARIES["settings"].header
    assert "COMPANION_TOOLS" in documented(header)
    assert "COMPANION_TOOLS" not in documented(header, text=text.replace(row + "\n", ""))


def test_the_page_has_the_sections_the_code_cites() -> None:
    """The code cites the contract by section number (docs/protocol.md section 13...)."""
    numbers = re.findall(r"^## (\d+)\. ", PAGE.read_text(), flags=re.M)
    assert numbers == [str(n) for n in range(1, 19)]
    cited = {
        int(n)
        for folder in ("companion_ws", "ui_state")
        for path in (ROOT / folder).rglob("*.py")
        for n in re.findall(r"docs/protocol\.md\s+sections?\s+(\d+)", path.read_text())
    }
    assert cited and cited <= set(range(1, 19)), cited


def test_the_code_cites_the_contract_in_the_repository() -> None:
    """Comments and docs cite docs/protocol.md, never a file outside the repository."""
    texts = [
        path
        for folder in ("companion_ws", "ui_state", "tests", "docs", "scripts", "examples")
        for path in (ROOT / folder).rglob("*")
        if path.suffix in {".py", ".js", ".mjs", ".md", ".html", ".sh", ".proto", ".json"}
        and "node_modules" not in path.parts
        and "vendor" not in path.parts
    ]
    assert len(texts) > 100
    needle = "PROTOCOL" + ".md"  # this file cites it only in pieces
    citing = [str(p.relative_to(ROOT)) for p in texts if needle in p.read_text()]
    assert citing == []


@pytest.mark.parametrize("code", sorted(_error_codes()))
def test_every_code_the_hub_can_send_is_produced_by_some_test(code: str) -> None:
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
