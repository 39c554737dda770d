"""Every HTML response carries the page headers (docs/protocol.md section 16, v1.2): the
files under ``/static/`` as ``/`` does, through the static files' own response."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from companion_ws.app import create_app
from companion_ws.endpoints.ui import STATIC
from companion_ws.settings import Settings

PAGE = ("content-security-policy", "x-frame-options", "x-content-type-options", "referrer-policy")
HTML_FILES = sorted(p.relative_to(STATIC).as_posix() for p in STATIC.rglob("*.html"))


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings.from_env(
        {}, database_url=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}", jwt_secret="x" * 32
    )
    app = create_app(settings)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
        yield client


def test_there_are_html_files_to_check() -> None:
    assert {"index.html", "admin.html"} <= set(HTML_FILES)


@pytest.mark.parametrize("name", HTML_FILES)
async def test_every_html_file_under_static_carries_the_page_headers(
    http: httpx.AsyncClient, name: str
) -> None:
    page = await http.get("/")
    assert page.status_code == 200
    answer = await http.get(f"/static/{name}")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    for header in PAGE:
        assert answer.headers.get(header) == page.headers[header], header
    assert "frame-ancestors 'none'" in answer.headers["content-security-policy"]
    # A revalidation (304) of the page still says it may not be framed.
    again = await http.get(f"/static/{name}", headers={"If-None-Match": answer.headers["etag"]})
    assert again.status_code == 304
    assert again.headers.get("x-frame-options") == "DENY"


async def test_a_script_is_not_a_page(http: httpx.AsyncClient) -> None:
    script = await http.get("/static/app.js")
    assert script.status_code == 200
    assert script.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in script.headers
