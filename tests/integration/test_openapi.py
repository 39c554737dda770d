"""``/openapi.json`` is true to the app (every route documented, nothing else), and a
schemathesis run fuzzes every operation against it on a real hub: no 500, every answer
as the document says."""

from __future__ import annotations

import asyncio
import re
import sys
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from companion_ws.app import create_app
from companion_ws.settings import Settings
from tests.support.fake_elevenlabs import FakeElevenLabs
from tests.support.hub import SECRET, HubFactory, HubProcess, token

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = 40  # per operation and phase


def _served() -> set[tuple[str, str]]:
    server = create_app(Settings(jwt_secret=SECRET, database_url="sqlite+aiosqlite://"))
    app = server.fallback
    while not isinstance(app, Starlette):  # under the middleware
        app = app.app  # type: ignore[attr-defined]
    served = set()
    for route in app.routes:
        if isinstance(route, Route) and route.methods:
            for method in route.methods - {"HEAD"}:
                served.add((route.path, method.lower()))
    return served


async def test_the_document_lists_exactly_the_routes_the_app_serves(
    hub_factory: HubFactory,
) -> None:
    hub = hub_factory().start()
    async with httpx.AsyncClient(base_url=hub.base_url) as http:
        doc = (await http.get("/openapi.json")).json()
    documented = {
        (path, method)
        for path, item in doc["paths"].items()
        for method in item
        if method in ("get", "post", "patch", "delete", "put")
    }
    assert documented == _served()
    assert doc["openapi"].startswith("3.1")


@pytest.mark.every_store
async def test_schemathesis_finds_no_server_error_and_no_answer_off_the_document(
    hub_factory: HubFactory, tmp_path: Path
) -> None:
    # Talking from the page is set up, against the local ElevenLabs-protocol server, so
    # its route is fuzzed past the configuration check (unset, it answers 503).
    async with FakeElevenLabs(agent_id="agent_fuzz", api_key="xi-fuzz-" + "z" * 24) as fake:
        hub = hub_factory(
            env={
                "COMPANION_ELEVENLABS_TOOL_SECRET": "tool-secret-" + "x" * 24,
                "COMPANION_ELEVENLABS_WEBHOOK_SECRET": "wsec_" + "y" * 32,
                "COMPANION_ELEVENLABS_AGENT_ID": fake.agent_id,
                "COMPANION_ELEVENLABS_API_KEY": fake.api_key,
                "COMPANION_ELEVENLABS_BASE_URL": fake.base_url,
            }
        ).start()
        await _fuzz(hub, tmp_path)


async def _fuzz(hub: HubProcess, tmp_path: Path) -> None:
    st = Path(sys.executable).with_name("st")
    process = await asyncio.create_subprocess_exec(
        str(st),
        "--config-file",
        str(ROOT / "schemathesis.toml"),
        "run",
        f"{hub.base_url}/openapi.json",
        "-H",
        f"Authorization: Bearer {token('ops', admin=True)}",
        "--checks",
        "all",
        # An ended session stays readable on purpose (its history and state are kept
        # until COMPANION_RETENTION): not a use after free.
        "--exclude-checks",
        "use_after_free",
        "--max-examples",
        str(EXAMPLES),
        "--seed",
        "20261130",
        "--no-color",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        cwd=tmp_path,  # its cache of found failures stays out of the repository
    )
    out, _ = await asyncio.wait_for(process.communicate(), 600)
    text = out.decode()
    generated = re.search(r"(\d+) generated", text)
    print(text[-1500:])
    assert process.returncode == 0, text[-6000:]
    assert generated is not None and int(generated.group(1)) >= 1000, text[-2000:]
