"""The operator's page in a real browser (issue 12, item 6): the sessions table, the live
tail of a selected session, and the charts of ``/admin/stats``; and the page without an
admin token. Screenshots go to ``test-artifacts/e2e/<database>/admin-*.png``.
"""

from __future__ import annotations

import uuid

import httpx
import pytest
from playwright.async_api import Page, expect

from companion_ws.client import CompanionClient
from tests.e2e.conftest import PHONE, Screens
from tests.support.hub import HubProcess, token

pytestmark = pytest.mark.browser

#: A broadcast reaches the tail within the page's 1 s poll; this bounds a loaded machine.
TAIL_MS = 5000
QUOTE_PARAMS = {"from_zip": "90210", "to_zip": "10001", "weight": 5}


def _user() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


def _row(page: Page, sid: str) -> str:
    return f'[data-testid=session-row][data-session-id="{sid}"]'


async def _points(page: Page, chart: str) -> int:
    points = await page.get_attribute(f"[data-chart={chart}] svg", "data-points")
    return int(points or 0)


async def test_the_operator_follows_sessions_events_and_counters(
    hub: HubProcess, screens: Screens
) -> None:
    alice, bob = _user(), _user()
    agent = CompanionClient(hub.ws_url, token=token(alice), client="agent", backoff_max=0.5)
    screen = CompanionClient(hub.ws_url, token=token(bob), client="ui", backoff_max=0.5)
    await agent.start()
    await screen.start()
    try:
        shipping, other = agent.session_id, screen.session_id
        assert shipping and other
        # Some activity in both: a tool call and a task in one, updates in the other.
        await agent.call_tool("get_shipping_quotes", "toolu_admin_1", QUOTE_PARAMS)
        async with httpx.AsyncClient(base_url=hub.base_url) as http:
            patched = await http.patch(
                f"/sessions/{shipping}/state",
                json={"tasks": [{"task_id": "t1", "name": "shipment", "status": "active"}]},
                headers={"Authorization": f"Bearer {token(alice)}"},
            )
            assert patched.status_code == 200, patched.text
        await screen.contextual_update("page_opened", {"path": "/"})

        admin = token("ops", admin=True)
        page = await screens.open("admin", f"{hub.base_url}/admin?token={admin}")
        assert "token=" not in page.url  # it left the address bar at once
        await expect(page.get_by_test_id("admin-status")).to_have_attribute("data-status", "live")
        rows = page.get_by_test_id("session-row")
        await expect(rows).to_have_count(2)
        shipping_row = page.locator(_row(page, shipping))
        await expect(shipping_row.get_by_test_id("session-tasks")).to_have_text(
            "1 task · shipment active"
        )
        await expect(shipping_row.locator("td").nth(1)).to_have_text(alice)
        await expect(shipping_row.locator("td").nth(2)).to_have_text("1")  # the agent

        # -- select the shipping session: its history fills the tail, newest first --------
        await shipping_row.click()
        await expect(shipping_row).to_have_attribute("aria-selected", "true")
        assert f"session_id={shipping}" in page.url
        tail = page.get_by_test_id("tail-row")
        await expect(tail.first).to_have_attribute("data-seq", str(agent.seq), timeout=TAIL_MS)
        await expect(page.locator("[data-testid=tail-row][data-type=client_joined]")).to_have_count(
            1
        )
        seqs = [int(s or 0) for s in await tail.evaluate_all("(r) => r.map((e) => e.dataset.seq)")]
        assert seqs == sorted(seqs, reverse=True) and seqs[-1] == 1

        # -- live: a client publishes, the tail shows it; the other session does not leak --
        echo = await agent.contextual_update("quote_ready", {"carrier": "UPS", "cost": 43.7})
        newest = tail.first
        await expect(newest).to_have_attribute("data-seq", str(echo["seq"]), timeout=TAIL_MS)
        await expect(newest).to_have_attribute("data-type", "contextual_update")
        await expect(newest).to_contain_text("Quote ready — carrier: UPS · cost: 43.7")
        await screen.contextual_update("not_this_session", {})
        await agent.call_tool("get_shipping_quotes", "toolu_admin_2", {**QUOTE_PARAMS, "weight": 9})
        await expect(tail.first).to_have_attribute("data-seq", str(agent.seq), timeout=TAIL_MS)
        # The run's last frame is its tool_call_finished; its quote_ready just before.
        await expect(tail.first).to_have_attribute("data-type", "tool_call_finished")
        await expect(tail.nth(1)).to_contain_text("weight_lbs: 9")
        assert await page.get_by_text("not_this_session").count() == 0

        # -- the charts: several samples drawn; the tool calls counted ---------------------
        await page.wait_for_function(
            "() => Number(document.querySelector('[data-chart=events] svg').dataset.points) >= 3",
            timeout=15_000,
        )
        for chart in ("connections", "events", "tool_calls", "slow_consumer_closes"):
            assert await _points(page, chart) >= 2, chart
        connections = page.locator("[data-chart=connections]")
        await expect(connections.locator(".big")).to_have_text("2")
        assert await connections.locator("path.spark-line").count() == 1
        tool_calls = page.locator("[data-chart=tool_calls]")
        await expect(tool_calls.locator("rect.spark-bar").first).to_be_attached()
        await expect(tool_calls.locator(".big")).to_have_text("2")
        await screens.shot(page, "admin-1-desktop", full_page=True)

        # -- a narrow window: the same page, stacked --------------------------------------
        phone = await screens.open("admin-phone", f"{hub.base_url}/admin?token={admin}", PHONE)
        await expect(phone.get_by_test_id("session-row")).to_have_count(2)
        await phone.locator(_row(phone, shipping)).click()
        await expect(phone.get_by_test_id("tail-row").first).to_be_visible(timeout=TAIL_MS)
        await phone.wait_for_function(
            "() => Number(document.querySelector('[data-chart=events] svg').dataset.points) >= 2",
            timeout=15_000,
        )
        width = await phone.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 390, f"the narrow page scrolls sideways ({width}px)"
        await screens.shot(phone, "admin-2-narrow", full_page=True)
        screens.console.assert_clean()
    finally:
        await agent.close()
        await screen.close()


async def test_without_an_admin_token_the_page_says_what_to_paste(
    hub: HubProcess, screens: Screens
) -> None:
    page = await screens.open("no-token", f"{hub.base_url}/admin")
    gate = page.get_by_test_id("token-gate")
    await expect(gate).to_be_visible()
    await expect(gate).to_contain_text("companion-ws token --sub ops --admin")
    await expect(page.get_by_test_id("admin-status")).to_have_attribute("data-status", "locked")
    await screens.shot(page, "admin-0-no-token")

    # A user's token: the hub answers 403 and the page says this is not an admin token.
    # (The browser reports that 403 on the console when it likes, possibly later than
    # the page's own message: it stays expected for the rest of the test.)
    with screens.console.expecting(r"status of 403"):
        await page.get_by_test_id("gate-token").fill(token(_user()))
        await page.get_by_role("button", name="Use this token").click()
        await expect(page.get_by_test_id("gate-reason")).to_contain_text("not an admin token")
        await expect(gate).to_be_visible()
        await screens.shot(page, "admin-0-not-admin")

        # An admin token pasted in: the console opens.
        await page.get_by_test_id("gate-token").fill(token("ops", admin=True))
        await page.get_by_role("button", name="Use this token").click()
        await expect(page.get_by_test_id("admin-status")).to_have_attribute("data-status", "live")
        await expect(gate).to_be_hidden()
        await expect(page.get_by_test_id("sessions-empty")).to_be_visible()
        screens.console.assert_clean()
