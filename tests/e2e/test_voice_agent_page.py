"""Issue 14's whole story in a real browser, with the real voice path: the ElevenLabs
SDK, through the bridge (``companion-ws agent``'s code), against the local
ElevenLabs-protocol stand-in playing the demo's shipping conversation. The user asks
for quotes, the agent answers, is interrupted and corrected, calls the tool; the user
picks a quote on the phone (joined by QR), the agent creates the label for that quote.
The desktop and the phone show the same transcript, agent state, steps and task; the
phone, reloaded mid-conversation, shows it all again.

Screenshots: ``test-artifacts/e2e/{sqlite,postgres}/voice-*``.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from playwright.async_api import Page, expect

from companion_ws.demo.script import ShippingScript
from companion_ws.demo.standin import StandIn
from companion_ws.integrations.elevenlabs import AgentBridge, BridgeConfig
from companion_ws.tools.registry import ToolRegistry
from tests.e2e.conftest import PHONE, Screens
from tests.e2e.test_conversation_page import expect_connected, messages_of
from tests.support.hub import HubProcess, token

pytestmark = pytest.mark.browser

ASK = "I need to ship a 5 pound box from 90210 to 10001."
CORRECTED = "Sure, let me look up the rates for a 5 pound box from Beverly Hills to New York."


@contextlib.asynccontextmanager
async def voice_agent(hub: HubProcess, session_id: str, owner: str) -> AsyncIterator[StandIn]:
    """The stand-in platform and the bridge, as ``companion-ws demo`` runs them."""
    async with StandIn(ShippingScript(pace=0.4, pick_timeout=60)) as platform:
        bridge = AgentBridge(
            BridgeConfig(
                agent_id=platform.agent_id,
                session_id=session_id,
                hub_url=hub.ws_url,
                token=owner,
                base_url=platform.base_url,
                keepalive=0,
            ),
            ToolRegistry.from_modules(["companion_ws.tools.shipping"]),
        )
        task = asyncio.create_task(bridge.run())
        try:
            yield platform
        finally:
            bridge.stop()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(task, 15)


async def same_on_both(desktop: Page, phone: Page) -> list[list[str]]:
    """The conversation as both pages show it, once they agree."""
    for _ in range(100):
        shown = await messages_of(desktop)
        if shown and shown == await messages_of(phone):
            return shown
        await asyncio.sleep(0.1)
    raise AssertionError(f"{await messages_of(desktop)} != {await messages_of(phone)}")


async def test_the_real_voice_path_on_desktop_and_phone(hub: HubProcess, screens: Screens) -> None:
    owner = token(f"u-{uuid.uuid4().hex[:8]}")
    desktop = await screens.open("desktop", f"{hub.base_url}/?token={owner}")
    await expect_connected(desktop)
    sid = (await desktop.get_by_test_id("session-id").text_content() or "").strip()
    await desktop.wait_for_function("() => document.querySelector('#qr').naturalWidth > 0")
    join_url = str(await desktop.get_by_test_id("join-link").get_attribute("href"))
    phone = await screens.open("phone", join_url, PHONE)
    await expect_connected(phone)
    pages = (desktop, phone)

    async with voice_agent(hub, sid, owner) as platform:
        # -- the agent speaks, the user asks, the agent is interrupted and corrected ----
        for page in pages:
            await expect(page.get_by_test_id("agent-state")).not_to_have_attribute(
                "data-state", "none", timeout=15_000
            )
            await expect(page.get_by_test_id("quote-option")).to_have_count(5, timeout=20_000)
            user = page.locator("[data-testid=message][data-role=user]").first
            await expect(user).to_contain_text(ASK)
            corrected = page.locator("[data-testid=message][data-corrected=true]")
            await expect(corrected).to_contain_text(CORRECTED)
            await expect(page.locator("#task-title")).to_have_text("Shipment")
            await expect(page.get_by_test_id("task-status")).to_have_text("In progress")
            tool_run = page.locator("[data-testid=progress-item][data-kind=tool]")
            await expect(tool_run.first).to_have_attribute("data-status", "done")
            # the agent reads the quotes out, then waits for a pick: the chat is still
            await expect(page.get_by_test_id("message").last).to_contain_text("Pick one")
        said = await same_on_both(desktop, phone)
        assert said[0][0] == "agent" and "scripted demo" in said[0][2]
        await screens.shot(desktop, "voice-desktop-1-quotes")
        await screens.shot(phone, "voice-phone-1-quotes")

        # -- the phone is reloaded mid-conversation: it shows it all again --------------
        await phone.reload()
        await expect_connected(phone)
        await expect(phone.get_by_test_id("quote-option")).to_have_count(5)
        assert await same_on_both(desktop, phone) == said
        await screens.shot(phone, "voice-phone-2-reloaded")

        # -- the user picks on the phone; the agent labels that quote -------------------
        option = phone.get_by_test_id("quote-option").nth(1)
        quote_id = await option.get_attribute("data-quote-id")
        await option.click()
        for page in pages:
            await expect(page.get_by_test_id("tracking-number")).to_contain_text(
                "1Z", timeout=20_000
            )
            await expect(page.get_by_test_id("task-status")).to_have_text("Completed")
        await asyncio.wait_for(platform.finished.wait(), 30)
        last = "You're welcome. This was the end of the demo."
        for page in pages:  # the agent's last words reach both screens
            await expect(page.get_by_test_id("message").last).to_contain_text(last)
        final = await same_on_both(desktop, phone)
        assert final[-1][2] == last
        assert not any(text == "The cheapest one, please." for _, _, text, *_ in final)
        await screens.shot(desktop, "voice-desktop-3-label")
        await screens.shot(phone, "voice-phone-3-label")

    async with httpx.AsyncClient(base_url=hub.base_url) as http:
        state = (
            await http.get(f"/sessions/{sid}/state", headers={"Authorization": f"Bearer {owner}"})
        ).json()["state"]
    picked = next(q for q in state["quotes"] if q["quote_id"] == quote_id)
    assert state["label"]["carrier"] == picked["carrier"]
    assert state["label"]["service"] == picked["service"]
    screens.console.assert_clean()
