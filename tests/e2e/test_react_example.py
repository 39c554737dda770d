"""examples/react-companion (Vite + React on ``@companion-ws/client`` and
``@companion-ws/react``) in Chromium against a real hub: an owner's desktop and a phone
joined by the hub's QR link show the same session state, conversation, tool run and
presence, live. Screenshots: ``test-artifacts/e2e/sqlite/react-example-*``."""

from __future__ import annotations

import functools
import subprocess
import threading
import uuid
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.e2e.conftest import PHONE, Screens
from tests.support.hub import HubProcess, token
from tests.support.ws import connect

pytestmark = pytest.mark.browser

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "react-companion"


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def example_app() -> Iterator[str]:
    """The example's production build (``npm ci && npm run build``, as CI does), served
    as static files from its own origin."""
    if not (EXAMPLE / "dist" / "index.html").exists():
        if not (EXAMPLE / "node_modules").exists():
            subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=EXAMPLE, check=True)
        subprocess.run(["npm", "run", "build"], cwd=EXAMPLE, check=True)
    handler = functools.partial(_Quiet, directory=str(EXAMPLE / "dist"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


async def connected(page: Page) -> None:
    await expect(page.get_by_test_id("status")).to_have_attribute("data-status", "connected")


async def test_two_screens_in_sync(hub: HubProcess, example_app: str, screens: Screens) -> None:
    owner = token(f"owner-{uuid.uuid4().hex[:8]}")
    desktop = await screens.open("desktop", f"{example_app}/?hub={hub.base_url}&token={owner}")
    await connected(desktop)
    sid = (await desktop.get_by_test_id("session-id").text_content()) or ""
    assert sid
    await expect(desktop.get_by_test_id("role")).to_have_text("owner")
    assert owner not in desktop.url  # the token left the address bar

    # The phone opens the link the owner's QR code carries.
    async with httpx.AsyncClient(base_url=hub.base_url) as http:
        reply = await http.post(
            f"/sessions/{sid}/join-token", headers={"Authorization": f"Bearer {owner}"}
        )
    join_url = reply.json()["join_url"]
    phone = await screens.open("phone", f"{example_app}/?join={quote(join_url)}", PHONE)
    await connected(phone)
    await expect(phone.get_by_test_id("session-id")).to_have_text(sid)
    await expect(phone.get_by_test_id("role")).to_contain_text("joined by QR link")

    # State: a step chosen on one screen shows on the other.
    await desktop.get_by_test_id("step-quotes").click()
    await expect(phone.get_by_test_id("step")).to_have_text("quotes")
    await phone.get_by_test_id("step-selected").click()
    await expect(desktop.get_by_test_id("step")).to_have_text("selected")

    # A voice agent joins, speaks and runs a tool: both screens follow.
    agent = await connect(hub.ws_url, owner, session_id=sid, client="agent")
    try:
        await agent.request({"type": "agent_state", "state": "thinking"})
        await agent.request(
            {
                "type": "transcript",
                "role": "user",
                "message_id": "u1",
                "text": "Ship a 5 lb box from 90210 to 10001",
                "final": True,
            }
        )
        call = {
            "tool_name": "get_shipping_quotes",
            "tool_call_id": f"toolu_{uuid.uuid4().hex[:12]}",
            "parameters": {"from_zip": "90210", "to_zip": "10001", "weight": 5},
        }
        await agent.send({"type": "client_tool_call", "client_tool_call": call, "requestId": "t1"})
        await agent.recv_until(lambda f: f.get("type") == "client_tool_result")
        await agent.request(
            {
                "type": "transcript",
                "role": "agent",
                "message_id": "a1",
                "text": "I found five rates; they are on your screen.",
                "final": True,
            }
        )
        for page in (desktop, phone):
            await expect(page.get_by_test_id("message")).to_have_count(2)
            await expect(page.get_by_test_id("message").nth(1)).to_contain_text("five rates")
            await expect(page.get_by_test_id("agent")).to_have_attribute("data-state", "thinking")
            await expect(page.get_by_test_id("tool")).to_have_attribute("data-status", "done")
            await expect(page.get_by_test_id("presence-count")).to_have_text("3")
        desktop_state = await desktop.get_by_test_id("state").text_content()
        assert desktop_state == await phone.get_by_test_id("state").text_content()
        assert '"quotes"' in (desktop_state or "")  # the tool's result, in the state
        await screens.shot(desktop, "react-example-desktop")
        await screens.shot(phone, "react-example-phone", full_page=True)
    finally:
        await agent.close()
    await expect(desktop.get_by_test_id("presence-count")).to_have_text("2")
    screens.console.assert_clean()
