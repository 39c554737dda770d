"""Talking from the page (issue 15, docs/protocol.md section 14) in a real browser.

Debian's Chromium, with its fake microphone, opens the owner's page and presses "Talk to
the agent". The page asks the real hub for a signed conversation; the hub gets it with
the official ``elevenlabs`` SDK from a local ElevenLabs-protocol server
(tests/support/fake_elevenlabs.py), and the official browser client, vendored and served
by the hub, opens that conversation on the same server, which scripts the agent: it
hears the user, speaks, calls ``get_shipping_quotes`` (run by the page through its hub
socket, which the test cuts right after the hub ran the tool: the call completes once,
on the next connection), and hears a phone joined by QR pick a quote. Then the
conversation is lost, started again, and the agent first hears where the session
stands.

Screenshots go to ``test-artifacts/e2e/<database>/talk-*.png``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from playwright.async_api import Browser, Page, WebSocketRoute, async_playwright, expect

from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, PHONE, Screens
from tests.support.fake_elevenlabs import FakeConversation, FakeElevenLabs
from tests.support.hub import HubFactory, token, tokens

pytestmark = pytest.mark.browser

Frame = dict[str, Any]
API_KEY = "xi-e2e-key-" + "k" * 24
AGENT = "agent_e2e_talk"
#: A microphone that exists and a permission prompt that says yes, as a user would.
MEDIA_ARGS = [
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]
QUOTE_PARAMS = {"from_zip": "90210", "to_zip": "10001", "weight": 5}
WATCH_WORKLETS = """
(() => {
  if (typeof AudioWorklet === 'undefined') return;
  const addModule = AudioWorklet.prototype.addModule;
  window.e2eWorklets = [];
  AudioWorklet.prototype.addModule = function (url, options) {
    window.e2eWorklets.push(String(url));
    return addModule.call(this, url, options);
  };
})();
"""


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """The conftest's browser, with a (fake) microphone."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=[*CHROMIUM_ARGS, *MEDIA_ARGS]
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def fake() -> AsyncIterator[FakeElevenLabs]:
    async with FakeElevenLabs(agent_id=AGENT, api_key=API_KEY) as server:
        yield server


class HubSocketTap:
    """The page's hub socket, through Playwright (no fake: every frame goes to the real
    hub and back). ``cut_after_result(id)`` lets the page's ``client_tool_call`` reach
    the hub, holds back the hub's ``client_tool_result`` for it and drops the page's
    socket instead, as a network failure right after the hub ran the tool would."""

    def __init__(self, hub_ws: str) -> None:
        self.prefix = f"{hub_ws}/ws"
        self.connections = 0
        self.calls: list[str] = []  # tool_call_id of every client_tool_call sent, in order
        self.cut: str | None = None
        self.cuts: list[str] = []
        self.held = asyncio.Event()  # while set, new connections are refused
        self.refused = 0
        self.retried = asyncio.Event()  # the page tried again while held
        self._closing: set[asyncio.Task[None]] = set()

    def matches(self, url: str) -> bool:
        return url.startswith(self.prefix)

    def cut_after_result(self, tool_call_id: str) -> None:
        self.cut = tool_call_id

    def _close(self, page_side: WebSocketRoute, code: int, reason: str) -> None:
        closing = asyncio.get_running_loop().create_task(page_side.close(code=code, reason=reason))
        self._closing.add(closing)
        closing.add_done_callback(self._closing.discard)

    def handle(self, page_side: WebSocketRoute) -> None:
        if self.held.is_set():
            self.refused += 1  # the network is still down: the page retries with backoff
            if self.refused >= 2:
                self.retried.set()
            self._close(page_side, 1011, "still cut")
            return
        hub_side = page_side.connect_to_server()
        self.connections += 1

        def from_page(message: str | bytes) -> None:
            frame = _frame(message)
            if frame.get("type") == "client_tool_call":
                self.calls.append(str(frame["client_tool_call"]["tool_call_id"]))
            hub_side.send(message)

        def from_hub(message: str | bytes) -> None:
            frame = _frame(message)
            if (
                self.cut is not None
                and frame.get("type") == "client_tool_result"
                and frame.get("tool_call_id") == self.cut
            ):
                self.cuts.append(self.cut)
                self.cut = None
                self.held.set()
                self._close(page_side, 4000, "cut by the test")
                return
            page_side.send(message)

        page_side.on_message(from_page)
        hub_side.on_message(from_hub)


def _frame(message: str | bytes) -> Frame:
    try:
        value = json.loads(message)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _auth(bearer: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {bearer}"}


async def talk_state(page: Page, state: str, timeout: float | None = None) -> None:
    card = page.get_by_test_id("talk")
    await expect(card).to_have_attribute("data-state", state, timeout=timeout)


async def next_update(conv: FakeConversation, timeout: float = 15.0) -> str:
    """The next ``contextual_update`` the page sends the agent (others are read past)."""
    message = await conv.next("contextual_update", timeout=timeout)
    return str(message["text"])


async def test_the_page_talks_runs_tools_through_the_hub_and_tells_the_agent_what_happens(
    hub_factory: HubFactory, fake: FakeElevenLabs, screens: Screens
) -> None:
    hub = hub_factory(
        env={
            "COMPANION_ELEVENLABS_AGENT_ID": AGENT,
            "COMPANION_ELEVENLABS_API_KEY": API_KEY,
            "COMPANION_ELEVENLABS_BASE_URL": fake.base_url,
        }
    ).start()
    owner = token("talker")
    async with httpx.AsyncClient(base_url=hub.base_url, timeout=15) as http:
        created = await http.post("/sessions", headers=_auth(owner))
        sid = created.json()["session_id"]

        tap = HubSocketTap(hub.ws_url)

        fetched: list[str] = []

        async def route_hub_socket(page: Page) -> None:
            await page.route_web_socket(tap.matches, tap.handle)
            page.on("request", lambda request: fetched.append(request.url))
            # Worklet modules are fetched out of sight of the page's request events:
            # note each URL the page hands AudioWorklet.addModule (then load it as is).
            await page.add_init_script(WATCH_WORKLETS)

        # -- the owner's page and a phone joined by its QR code -------------------------
        desktop = await screens.open(
            "desktop", f"{hub.base_url}/?token={owner}&session_id={sid}", prepare=route_hub_socket
        )
        await expect(desktop.get_by_test_id("connection-status")).to_have_attribute(
            "data-status", "connected"
        )
        talk = desktop.get_by_test_id("talk")
        await talk_state(desktop, "idle")
        # The microphone is explained before the browser asks for it.
        await expect(talk.get_by_test_id("talk-detail")).to_contain_text("microphone")
        button = talk.get_by_test_id("talk-button")
        await expect(button).to_have_text("Talk to the agent")
        link = desktop.get_by_test_id("join-link")
        await expect(link).to_have_attribute("href", re.compile(r"/join\?token="))
        join_url = str(await link.get_attribute("href"))
        assert join_url.startswith(f"{hub.base_url}/join?token=")
        phone = await screens.open("phone", join_url, PHONE)
        await expect(phone.get_by_test_id("connection-status")).to_have_attribute(
            "data-status", "connected"
        )
        # A companion can talk too: "Talk here" hands it the voice (test_voice_handoff.py).
        await talk_state(phone, "idle")
        await expect(phone.get_by_test_id("talk-button")).to_be_visible()
        await screens.shot(desktop, "talk-1-before")

        # -- talk: the official client opens the conversation the hub signed -------------
        await button.click()
        conv = await fake.conversation(timeout=20)
        assert fake.signed_url_requests[-1]["xi-api-key"] == API_KEY
        assert conv.query["conversation_signature"]  # through the signed URL, not a public agent
        assert conv.query["source"] == "js_sdk"
        offered = {k.lower(): v for k, v in fake.handshakes[-1].items()}
        assert offered["sec-websocket-protocol"] == "convai"
        capability = conv.dynamic_variables["session_id"]
        assert tokens.verify_capability(capability).session_scope == sid
        # First the agent hears where the session stands.
        assert await next_update(conv) == (
            "The session has just started: nothing has been decided yet."
        )
        await talk_state(desktop, "listening")
        await expect(button).to_have_text("End conversation")
        # The microphone is live: the client streams it to the agent.
        await conv.wait_for(lambda m: "user_audio_chunk" in m)

        # -- the conversation is on every screen, live -----------------------------------
        await conv.user_said("I need to ship a 5 pound box from 90210 to 10001.")
        await conv.speak("Sure, let me get you some quotes.", seconds=3.0)
        # While its audio plays, the agent is speaking, on this page and on the phone.
        await talk_state(desktop, "speaking")
        await expect(phone.get_by_test_id("talk")).to_have_attribute("data-agent-state", "speaking")
        for page in (desktop, phone):
            lines = page.get_by_test_id("talk-line")
            await expect(lines).to_have_count(2)
            await expect(lines.nth(0)).to_have_attribute("data-role", "user")
            await expect(lines.nth(0)).to_contain_text("from 90210 to 10001")
            await expect(lines.nth(1)).to_contain_text("let me get you some quotes")
        await screens.shot(desktop, "talk-2-speaking")
        await talk_state(desktop, "listening")

        # -- a tool call, with the hub socket cut after the hub ran it ------------------
        call_id = "toolu_e2e_quotes_1"
        tap.cut_after_result(call_id)
        connections = tap.connections
        await conv.call_tool(
            "get_shipping_quotes", {**QUOTE_PARAMS, "session_id": capability}, call_id
        )
        # The hub ran it, its answer was lost with the socket, and the network stays
        # down for a while: the call waits (it does not fail), and the page says why.
        await asyncio.wait_for(tap.held.wait(), 15)
        await talk_state(desktop, "thinking")
        await expect(talk.get_by_test_id("talk-detail")).to_contain_text("connection")
        await expect(phone.get_by_test_id("talk")).to_have_attribute("data-agent-state", "thinking")
        await expect(desktop.get_by_test_id("connection-status")).to_have_attribute(
            "data-status", "reconnecting"
        )
        await asyncio.wait_for(tap.retried.wait(), 15)  # the page kept trying
        await screens.shot(desktop, "talk-3-waiting-for-the-hub")
        assert conv.sent("client_tool_result") == []
        tap.held.clear()
        result = await conv.tool_result(call_id, timeout=30)
        assert result["is_error"] is False, result
        quotes = json.loads(result["result"])["quotes"]
        assert len(quotes) == 5
        assert tap.cuts == [call_id]  # the first answer never reached the page...
        assert tap.connections == connections + 1  # ...which reconnected...
        assert tap.calls.count(call_id) == 2  # ...and asked again, with the same id
        assert len(conv.sent("client_tool_result")) == 1
        history = (
            await http.get(f"/sessions/{sid}/history?limit=1000", headers=_auth(owner))
        ).json()["events"]
        # It ran once: one tool run, one state change with the quotes.
        started = [e["tool_call_id"] for e in history if e["type"] == "tool_call_started"]
        assert started == [call_id]
        assert sum(1 for e in history if "quotes" in (e.get("patch") or {})) == 1
        # What the page published, mapped by static/voice-frames.js as the Python bridge
        # maps (tests/fixtures/voice): thinking after the user's turn, speaking while the
        # agent's audio plays, listening once it ends, thinking while the tool runs.
        said = [e for e in history if e["type"] == "transcript"]
        assert [(e["role"], e["final"]) for e in said] == [("user", True), ("agent", True)]
        assert all(re.fullmatch(r"(user|agent)_[0-9a-f]{12}", e["message_id"]) for e in said)
        states = [e["state"] for e in history if e["type"] == "agent_state"]
        assert states == ["listening", "thinking", "speaking", "listening", "thinking"]
        for page in (desktop, phone):
            await expect(page.get_by_test_id("quote-option")).to_have_count(5)
        await conv.speak("I found five quotes. The cheapest is USPS Ground.")
        await expect(phone.get_by_test_id("talk-line")).to_have_count(3)
        await screens.shot(desktop, "talk-4-quotes", full_page=True)

        # -- the user picks on the phone; the agent hears it -----------------------------
        chosen = quotes[1]
        await phone.locator(
            f'[data-testid=quote-option][data-quote-id="{chosen["quote_id"]}"]'
        ).click()
        heard = await next_update(conv)
        assert heard.startswith("On screen, the user selected ")
        assert f"{chosen['carrier']} {chosen['service']}" in heard
        await screens.shot(phone, "talk-5-phone", full_page=True)

        # -- the conversation is lost: the page says so and starts again -----------------
        # The official client streams the microphone to its socket until it has handled
        # the close: a chunk sent in between makes Chromium log this (the client's own
        # send, in the vendored bundle; the page's sends check the conversation is open).
        with screens.console.expecting(r"WebSocket is already in CLOSING or CLOSED state"):
            await conv.close(1011, "internal error")
            await talk_state(desktop, "dropped")
        await expect(talk.get_by_test_id("talk-detail")).to_contain_text("lost")
        await expect(button).to_have_text("Start again")
        await expect(phone.get_by_test_id("talk")).to_have_attribute("data-agent-state", "idle")
        await screens.shot(desktop, "talk-6-dropped")
        await button.click()
        again = await fake.conversation(timeout=20)
        summary = await next_update(again)  # the first thing it hears
        assert summary.startswith("Resuming the session. ")
        assert f"The user selected {chosen['carrier']} {chosen['service']}" in summary
        assert summary.endswith(  # and the last exchanges
            'you said "I found five quotes. The cheapest is USPS Ground.".'
        )
        await talk_state(desktop, "listening")
        await screens.shot(desktop, "talk-7-again")

        # Everything the page loaded came from the hub (no CDN; blob: URLs are the QR
        # codes), the client's audio worklets included: by path, so never as a blob: or
        # data: module (the client throws rather than fall back when a path fails).
        vendor = "/static/vendor/elevenlabs-client/"
        assert f"{hub.base_url}{vendor}elevenlabs-client.js" in fetched
        assert all(url.startswith((hub.base_url, "blob:")) for url in fetched), fetched
        worklets = await desktop.evaluate("() => window.e2eWorklets")
        assert set(worklets) == {  # one pair per conversation, never a blob: or data: URL
            f"{vendor}worklets/audioConcatProcessor.js",
            f"{vendor}worklets/rawAudioProcessor.js",
        }

        # A screen that joins now sees what was said before it came.
        await expect(link).not_to_have_attribute("href", join_url)
        late = await screens.open("late", str(await link.get_attribute("href")), PHONE)
        await expect(late.get_by_test_id("talk-line")).to_have_count(3)
        await expect(late.get_by_test_id("talk-line").nth(0)).to_contain_text("90210")

        # -- and ends it -------------------------------------------------------------------
        await button.click()
        await talk_state(desktop, "ended")
        await asyncio.wait_for(again.closed.wait(), 10)
        await expect(button).to_have_text("Talk again")
        await screens.shot(desktop, "talk-8-ended")

    screens.console.assert_clean()


async def test_a_hub_not_set_up_for_talking_says_how_to_connect_an_agent(
    hub_factory: HubFactory, screens: Screens
) -> None:
    """Without COMPANION_ELEVENLABS_* the page has no "Talk to the agent" button (the
    route answers 503 not_configured: tests/inproc/test_talk.py); its card says how to
    connect a voice agent."""
    hub = hub_factory().start()
    owner = token("quiet")
    page = await screens.open("desktop", f"{hub.base_url}/?token={owner}")
    connected = page.get_by_test_id("connection-status")
    await expect(connected).to_have_attribute("data-status", "connected")
    await expect(page.get_by_test_id("conversation")).to_be_visible()
    await expect(page.get_by_test_id("talk")).to_be_visible()
    await expect(page.get_by_test_id("talk")).to_have_attribute("data-state", "unset")
    await expect(page.get_by_test_id("talk-detail")).to_contain_text(
        "companion-ws elevenlabs provision"
    )
    await expect(page.get_by_test_id("talk-button")).to_be_hidden()
    await screens.shot(page, "talk-unavailable")
    screens.console.assert_clean()
