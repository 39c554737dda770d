"""No stale write wins, on the page (issue 23, the newcomer's step 5f): a phone offline
taps a rate; meanwhile the laptop picks another and the agent makes its label; when the
phone is back its queued pick is not applied (it carried the version the phone showed),
and the phone says what changed. The rule is the hub's and the page's, so the page
needs no particular database: one SQLite hub.

Screenshots go to ``test-artifacts/e2e/nodb/``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.async_api import Locator, Page, expect

from companion_ws.client import CompanionClient
from tests.e2e.conftest import PHONE, Screens
from tests.support.hub import HubProcess, token

pytestmark = pytest.mark.browser

QUOTE_PARAMS = {"from_zip": "90210", "to_zip": "10001", "weight": 5}


@pytest.fixture(scope="module")
def sqlite_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    tmp: Path = tmp_path_factory.mktemp("stale-pick")
    process = HubProcess(
        database_url=f"sqlite+aiosqlite:///{tmp / 'hub.db'}", log_path=tmp / "hub.log"
    ).start()
    try:
        yield process
    finally:
        process.stop()


def option(page: Page, quote_id: str) -> Locator:
    return page.locator(f'[data-testid=quote-option][data-quote-id="{quote_id}"]')


async def test_a_pick_queued_offline_is_not_applied_over_a_newer_one_and_the_page_says_so(
    sqlite_hub: HubProcess, screens: Screens
) -> None:
    owner = token(f"u-{uuid.uuid4().hex[:8]}")
    agent = CompanionClient(sqlite_hub.ws_url, token=owner, client="agent", backoff_max=0.5)
    await agent.start()
    sid = agent.session_id
    try:
        link = f"{sqlite_hub.base_url}/?token={owner}&session_id={sid}"
        laptop = await screens.open("laptop", link)
        phone = await screens.open("phone", link, PHONE)
        answer = await agent.call_tool(
            "get_shipping_quotes", f"toolu_{uuid.uuid4().hex[:12]}", QUOTE_PARAMS
        )
        quotes = json.loads(answer["result"])["quotes"]
        laptop_pick, phone_pick = quotes[0], quotes[1]
        for page in (laptop, phone):
            await expect(page.get_by_test_id("quote-option")).to_have_count(len(quotes))

        # the phone goes offline and taps a rate: queued, "Saving…"
        await phone.context.set_offline(True)
        await expect(phone.get_by_test_id("connection-status")).not_to_have_attribute(
            "data-status", "connected"
        )
        await option(phone, phone_pick["quote_id"]).click()

        # meanwhile the laptop picks another, and the agent makes its label
        await option(laptop, laptop_pick["quote_id"]).click()
        await expect(laptop.get_by_test_id("selected-option")).to_have_attribute(
            "data-quote-id", laptop_pick["quote_id"]
        )
        made = await agent.call_tool(
            "create_shipping_label",
            f"toolu_{uuid.uuid4().hex[:12]}",
            {"quote_id": laptop_pick["quote_id"]},
        )
        assert made["is_error"] is False, made
        tracking = json.loads(made["result"])["label"]["tracking_number"]

        # the phone comes back: its queued pick is refused, and it says what changed
        await phone.context.set_offline(False)
        await expect(phone.get_by_test_id("connection-status")).to_have_attribute(
            "data-status", "connected"
        )
        notice = phone.locator("#notice")
        await expect(notice).to_be_visible()
        await expect(notice).to_contain_text(f"{phone_pick['carrier']}")
        await expect(notice).to_contain_text("was not applied")
        await expect(notice).to_contain_text(
            f"label was made for {laptop_pick['carrier']} {laptop_pick['service']}"
        )
        for page in (laptop, phone):
            await expect(page.get_by_test_id("selected-option")).to_have_attribute(
                "data-quote-id", laptop_pick["quote_id"]
            )
            await expect(page.get_by_test_id("tracking-number")).to_have_text(tracking)
        await screens.shot(phone, "stale-pick-phone-back", full_page=True)

        truth = await agent.request({"type": "get_session_state"})
        assert truth["state"]["selected_option"]["quote_id"] == laptop_pick["quote_id"]
        assert truth["state"]["label"]["tracking_number"] == tracking
        assert truth["state"]["ui"]["current_step"] == "label"
    finally:
        await agent.close()
    screens.console.assert_clean()
