"""The voice follows the user (issue 26, docs/protocol.md section 17) in a real browser.

Two Chromium contexts with the fake microphone: the owner's laptop and a phone joined by
the laptop's join link. The laptop talks with the local ElevenLabs stand-in
(tests/support/fake_elevenlabs.py) through the official browser client, the agent fetches
quotes; mid-task the phone presses "Talk here": the laptop's conversation ends within a
second, the phone's starts, and the first thing its agent hears is where the session
stands (the quotes and the last exchanges), so it carries on. Both screens show one
conversation with a mark where the voice moved, and an interrupt pressed on the laptop
stops the phone's agent speech.

The same handoff runs across two hub processes on Redis, the phone coming in through
the second one. Screenshots go to ``test-artifacts/e2e/<database>/handoff-*.png``.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import expect

from tests.e2e.conftest import DESKTOP, PHONE, Screens
from tests.e2e.test_companion_page import decode_qr
from tests.e2e.test_talk_page import (  # the browser with a microphone, the stand-in
    AGENT,
    API_KEY,
    QUOTE_PARAMS,
    browser,
    fake,
    next_update,
    talk_state,
)
from tests.integration.test_demo import _demo
from tests.support.cluster import Cluster
from tests.support.fake_elevenlabs import FakeElevenLabs
from tests.support.hub import HubFactory, token, tokens

pytestmark = pytest.mark.browser
#: The development certificate is self-signed: the browser is told to accept it, as the
#: user does once on the phone's warning page.
TRUSTING = {"ignore_https_errors": True}
__all__ = ["browser", "fake"]  # fixtures used here


def _talking(fake: FakeElevenLabs) -> dict[str, str]:
    return {
        "COMPANION_ELEVENLABS_AGENT_ID": AGENT,
        "COMPANION_ELEVENLABS_API_KEY": API_KEY,
        "COMPANION_ELEVENLABS_BASE_URL": fake.base_url,
    }


async def _session(base_url: str, owner: str) -> str:
    # The test's own call to a hub on --dev-tls: its certificate is self-signed.
    async with httpx.AsyncClient(base_url=base_url, timeout=15, verify=False) as http:
        created = await http.post("/sessions", headers={"Authorization": f"Bearer {owner}"})
        return str(created.json()["session_id"])


async def test_the_phone_takes_the_voice_mid_task_and_the_agent_carries_on(
    hub_factory: HubFactory, fake: FakeElevenLabs, screens: Screens
) -> None:
    hub = hub_factory(env=_talking(fake))
    hub.args, hub.tls = ["--dev-tls"], True  # a phone's browser gives a microphone over HTTPS
    hub.start()
    owner = token("handoff")
    sid = await _session(hub.base_url, owner)
    await handoff(screens, fake, owner, sid, hub.base_url, hub.base_url, "handoff", scan=True)


@pytest.fixture
def talking_two(fake: FakeElevenLabs, tmp_path: Path) -> Iterator[Cluster]:
    """Two hubs on one PostgreSQL database and one Redis, set up for talking."""
    cluster = Cluster(tmp_path, size=2, env=_talking(fake))
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.close()


# Needs processes: two hubs on one database and the Redis broker.
@pytest.mark.redis
@pytest.mark.postgres
async def test_the_same_handoff_across_two_processes_on_redis(
    fake: FakeElevenLabs, screens: Screens, talking_two: Cluster
) -> None:
    first, second = talking_two.hubs
    owner = token("handoff2")
    sid = await _session(first.base_url, owner)
    await handoff(screens, fake, owner, sid, first.base_url, second.base_url, "handoff-two")


async def handoff(
    screens: Screens,
    fake: FakeElevenLabs,
    owner: str,
    sid: str,
    laptop_base: str,
    phone_base: str,
    shots: str,
    *,
    scan: bool = False,
) -> None:
    """The laptop talks on ``laptop_base``; the phone opens the laptop's join link
    through ``phone_base`` (the same hub, or another process of it) and takes the voice.
    ``scan``: the phone opens what the QR code on the laptop's screen holds."""
    laptop = await screens.open(
        "laptop", f"{laptop_base}/?token={owner}&session_id={sid}", {**DESKTOP, **TRUSTING}
    )
    await expect(laptop.get_by_test_id("connection-status")).to_have_attribute(
        "data-status", "connected"
    )
    link = laptop.get_by_test_id("join-link")
    await expect(link).to_have_attribute("href", re.compile(r"/join\?token="))
    join = str(await link.get_attribute("href"))
    assert join.startswith(f"{laptop_base}/join?token=")
    if scan:  # the camera's view: what the code on the screen holds
        qr = laptop.get_by_test_id("qr")
        await expect(qr).to_be_visible()
        await laptop.wait_for_function("() => document.querySelector('#qr').naturalWidth > 0")
        [join] = decode_qr(await qr.screenshot())
        assert join.startswith("https://")
    phone = await screens.open(
        "phone", join.replace(laptop_base, phone_base, 1), {**PHONE, **TRUSTING}
    )
    await expect(phone.get_by_test_id("connection-status")).to_have_attribute(
        "data-status", "connected"
    )
    await talk_state(phone, "idle")  # a companion can talk too

    # -- the laptop talks; the agent fetches quotes ------------------------------------
    await laptop.get_by_test_id("talk-button").click()
    first = await fake.conversation(timeout=20)
    await next_update(first)  # the session's summary
    await talk_state(laptop, "listening")
    await talk_state(phone, "elsewhere")
    await expect(phone.get_by_test_id("talk-button")).to_have_text("Talk here")
    capability = first.dynamic_variables["session_id"]
    await first.user_said("Ship a 5 pound box from 90210 to 10001, please.")
    result = await first.tool_result(
        await first.call_tool("get_shipping_quotes", {**QUOTE_PARAMS, "session_id": capability}),
        timeout=20,
    )
    quotes = json.loads(result["result"])["quotes"]
    await first.speak("I found five quotes. The cheapest is USPS Ground.")
    for page in (laptop, phone):
        await expect(page.get_by_test_id("quote-option")).to_have_count(5)
        await expect(page.get_by_test_id("talk-line")).to_have_count(2)
    await screens.shot(laptop, f"{shots}-1-laptop-talking")

    # -- mid-task, the phone takes the voice -------------------------------------------
    pressed = time.monotonic()
    await phone.get_by_test_id("talk-button").click()
    # A bound on waiting, not a claim about speed (that is bench/floor.py's): on a quiet
    # machine the laptop's conversation ends well within a second of the press.
    await asyncio.wait_for(first.closed.wait(), 5)
    print(f"the laptop's conversation ended {time.monotonic() - pressed:.2f} s after the press")
    second = await fake.conversation(timeout=20)
    told = await next_update(second)  # the first thing the phone's agent hears
    assert told.startswith("Resuming the session. "), told
    assert "Quotes offered (5)" in told
    for quote in quotes:
        assert f"{quote['carrier']} {quote['service']}" in told
    assert told.endswith('you said "I found five quotes. The cheapest is USPS Ground.".'), told
    # The phone's conversation acts on the same session (its capability names it).
    assert tokens.verify_capability(second.dynamic_variables["session_id"]).session_scope == sid
    await talk_state(phone, "listening")
    await talk_state(laptop, "moved")
    await expect(laptop.get_by_test_id("talk-button")).to_have_text("Talk here")
    for page in (laptop, phone):
        await expect(page.get_by_test_id("talk-mark")).to_have_count(1)
        await expect(page.get_by_test_id("talk-moved")).to_be_visible()
    await expect(phone.get_by_test_id("talk-moved")).to_have_text("The voice moved to this screen.")

    # -- the phone's agent carries on; one conversation on both screens -----------------
    cheapest = quotes[0]
    await second.speak(f"Shall I book {cheapest['carrier']} {cheapest['service']}?")
    for page in (laptop, phone):
        lines = page.get_by_test_id("talk-line")
        await expect(lines).to_have_count(3)
        await expect(lines.nth(2)).to_contain_text("Shall I book")
        # The mark sits between what was said on the laptop and on the phone.
        mark = page.locator("[data-testid=talk-transcript] > li").nth(2)
        await expect(mark).to_have_attribute("data-testid", "talk-mark")
    # The Conversation card shows the same one conversation, with the marks in seq order:
    # where the voice started (the laptop) and where it moved (the phone).
    for page, here, there in (
        (laptop, "this screen", "the screen joined by QR"),
        (phone, "the owner\u2019s screen", "this screen"),
    ):
        chat = page.locator("#chat > li")
        await expect(chat).to_have_count(5)
        await expect(chat.nth(0)).to_contain_text(f"The voice started on {here}.")
        await expect(chat.nth(3)).to_have_attribute("data-testid", "voice-moved")
        await expect(chat.nth(3)).to_contain_text(f"The voice moved to {there}.")
        await expect(chat.nth(4)).to_contain_text("Shall I book")
    await screens.shot(phone, f"{shots}-2-phone-talking", full_page=True)
    await screens.shot(laptop, f"{shots}-3-laptop-after", full_page=True)

    # -- an interrupt pressed on the laptop stops the phone's agent speech -------------
    await second.speak("Here are all the details of every quote, one by one.", seconds=8.0)
    await talk_state(phone, "speaking")
    await laptop.get_by_test_id("talk-interrupt").click()
    await talk_state(phone, "listening", timeout=3000)  # long before its 8 s of audio end
    heard = await second.contextual_update(lambda text: "interrupted" in text)
    assert "another screen" in heard
    await screens.shot(phone, f"{shots}-4-interrupted")

    # -- and the laptop ends it ---------------------------------------------------------
    await laptop.get_by_test_id("talk-end").click()
    await asyncio.wait_for(second.closed.wait(), 5)
    await expect(phone.get_by_test_id("talk")).to_have_attribute("data-floor", "free")
    await expect(laptop.get_by_test_id("talk")).to_have_attribute("data-floor", "free")
    screens.console.assert_clean()


async def test_the_demo_hands_the_voice_to_the_phone_and_its_agent_carries_on(
    screens: Screens,
) -> None:
    """``companion-ws demo``: its scripted agent (the real bridge) fetches quotes; the
    phone, joined by QR, presses "Talk here": the bridge leaves, and the stand-in agent,
    now talking to the phone's page, names the quotes already fetched."""
    async for demo in _demo("--pick-timeout", "60"):
        link = next(line for line in demo.lines if "open the page" in line).split()[-1]
        laptop = await screens.open("laptop", link)
        # The quotes: the demo's agent is mid-task, waiting for a pick.
        await expect(laptop.get_by_test_id("quote-option")).to_have_count(5, timeout=30_000)
        join = laptop.get_by_test_id("join-link")
        await expect(join).to_have_attribute("href", re.compile(r"/join\?token="))
        phone = await screens.open("phone", str(await join.get_attribute("href")), PHONE)
        await talk_state(phone, "elsewhere")  # the demo's agent holds the voice
        await phone.get_by_test_id("talk-button").click()
        await demo.line_with("the voice moved to a screen")
        said = phone.get_by_test_id("talk-line").filter(has_text="already fetched")
        await expect(said).to_have_count(1, timeout=20_000)
        text = await said.inner_text()
        assert "5 quotes" in text
        await expect(
            laptop.get_by_test_id("talk-line").filter(has_text="already fetched")
        ).to_have_count(1)
        await screens.shot(phone, "handoff-demo-phone", full_page=True)
        state = (await demo.get(f"/sessions/{demo.session_id}/state"))["state"]
        fetched = [f"{q['carrier']} {q['service']}" for q in state["quotes"]]
        assert len(fetched) == 5 and all(name in text for name in fetched), (fetched, text)
        screens.console.assert_clean()
        for page in (laptop, phone):  # before the demo stops: no reconnects to log
            await page.close()
