"""The conversation on every screen (issue 14, item 7), in a real browser: a desktop opened
with the owner's link and a phone joined by its QR link follow a scripted voice agent (a
socket of role ``agent`` sending the frames of docs/protocol.md section 13, and running the
shipping tools with ``client_tool_call``); both show the same transcript, agent state,
steps and task, and the phone, reloaded mid-conversation, shows it all again.

Screenshots of each stage go to ``test-artifacts/e2e/sqlite/conversation-*``.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
import pytest
from playwright.async_api import Page, expect

from tests.e2e.conftest import PHONE, TITLES_UNDER_HEADER, Screens
from tests.support.hub import HubProcess, token
from tests.support.ws import WS, connect

pytestmark = pytest.mark.browser

Frame = dict[str, Any]
QUOTE_PARAMS = {"from_zip": "90210", "to_zip": "10001", "weight": 5}
ASK = "I need to ship a 5 pound box from 90210 to 10001. What are my options?"
ANSWER_PARTS = [
    "I found five rates.",
    "I found five rates. The cheapest is USPS Ground at",
    "I found five rates. The cheapest is USPS Ground at $9.40, and the fastest is FedEx "
    "Priority Overnight, which arrives tomorrow.",
]
#: What ElevenLabs' agent_response_correction leaves of the answer the user interrupted.
ANSWER_CORRECTED = "I found five rates. The cheapest is USPS Ground at $9.40"
INTERRUPTION = "Wait — can you show them on my phone?"
CONFIRM = "Got it. Creating the label for your choice now."
DONE = "Your label is ready. The tracking number is on your screen."


class Agent:
    """A voice agent's connection (role ``agent``), speaking section 13 frames."""

    def __init__(self, ws: WS) -> None:
        self.ws = ws
        self.session_id: str = ws.welcome["session_id"]
        self.calls: list[str] = []  # the tool_call_ids it used, in order

    async def send(self, frame: Frame) -> Frame:
        """Send, and wait for the hub's broadcast of it (it carries our requestId)."""
        echo = await self.ws.request(frame)
        assert echo.get("type") == frame["type"], echo
        return echo

    async def state(self, state: str) -> None:
        await self.send({"type": "agent_state", "state": state})

    async def say(self, role: str, message_id: str, text: str, *, final: bool = True) -> None:
        await self.send(
            {
                "type": "transcript",
                "role": role,
                "message_id": message_id,
                "text": text,
                "final": final,
            }
        )

    async def step(self, step_id: str, name: str, status: str, detail: str | None = None) -> None:
        frame: Frame = {"type": "step", "step_id": step_id, "name": name, "status": status}
        if detail is not None:
            frame["detail"] = detail
        await self.send(frame)

    async def tool(self, name: str, parameters: dict[str, Any]) -> Any:
        call_id = f"toolu_{uuid.uuid4().hex[:12]}"
        call = {
            "tool_name": name,
            "tool_call_id": call_id,
            "parameters": {**parameters, "session_id": self.session_id},
        }
        self.calls.append(call_id)
        rid = f"tool-{call_id}"
        await self.ws.send({"type": "client_tool_call", "client_tool_call": call, "requestId": rid})
        reply = await self.ws.recv_until(
            lambda f: f.get("requestId") == rid and f.get("type") in ("client_tool_result", "error")
        )
        assert reply.get("type") == "client_tool_result" and reply["is_error"] is False, reply
        return json.loads(reply["result"])


async def messages_of(page: Page) -> list[list[str]]:
    """The chat as the page shows it: [role, message id, text, final, corrected]."""
    rows: list[list[str]] = await page.evaluate(
        """() => [...document.querySelectorAll('[data-testid=message]')].map((m) => [
            m.dataset.role, m.dataset.messageId,
            m.querySelector('[data-testid=message-text]').textContent,
            m.dataset.final, m.dataset.corrected])"""
    )
    return rows


async def progress_of(page: Page) -> list[list[str]]:
    rows: list[list[str]] = await page.evaluate(
        """() => [...document.querySelectorAll('[data-testid=progress-item]')].map((p) => [
            p.dataset.kind, p.dataset.id, p.dataset.status])"""
    )
    return rows


def message(page: Page, message_id: str) -> Any:
    return page.locator(f'[data-testid=message][data-message-id="{message_id}"]')


async def expect_agent(page: Page, state: str) -> None:
    await expect(page.get_by_test_id("agent-state")).to_have_attribute("data-state", state)


async def expect_connected(page: Page, timeout: float | None = None) -> None:
    await expect(page.get_by_test_id("connection-status")).to_have_attribute(
        "data-status", "connected", timeout=timeout
    )


async def test_desktop_and_phone_show_the_whole_conversation(
    hub: HubProcess, screens: Screens
) -> None:
    owner = token(f"u-{uuid.uuid4().hex[:8]}")

    # -- the desktop opens first: no agent yet, and it says so -------------------------
    desktop = await screens.open("desktop", f"{hub.base_url}/?token={owner}")
    await expect_connected(desktop)
    sid = (await desktop.get_by_test_id("session-id").text_content() or "").strip()
    assert sid
    await expect_agent(desktop, "none")
    await expect(desktop.get_by_test_id("agent-state")).to_have_text("No agent")
    empty = desktop.get_by_test_id("empty-state")
    await expect(empty).to_have_attribute("data-agent", "absent")
    await expect(empty).not_to_contain_text("Ask the voice agent")
    await expect(desktop.get_by_test_id("conversation-empty")).to_contain_text(
        "No voice agent is connected"
    )
    # Nothing is known yet, so no step of the task is highlighted.
    await expect(desktop.locator('#stepper [aria-current="step"]')).to_have_count(0)
    await desktop.wait_for_function("() => document.querySelector('#qr').naturalWidth > 0")
    await screens.shot(desktop, "conversation-desktop-0-no-agent")

    # -- the phone joins by the QR link, then the agent --------------------------------
    join_url = str(await desktop.get_by_test_id("join-link").get_attribute("href"))
    phone = await screens.open("phone", join_url, PHONE)
    await expect_connected(phone)
    await expect(phone.get_by_test_id("session-id")).to_have_text(sid)
    agent = Agent(await connect(hub.ws_url, owner, session_id=sid, client="agent"))
    assert agent.ws.welcome["role"] == "agent"
    pages = (desktop, phone)
    try:
        await agent.state("listening")
        for page in pages:
            await expect_agent(page, "listening")
            await expect(page.get_by_test_id("agent-state")).to_have_text("Listening")
            await expect(page.get_by_test_id("empty-state")).to_have_attribute(
                "data-agent", "present"
            )
            members = page.get_by_test_id("presence-item")
            await expect(members).to_have_count(3)
            agent_row = page.locator("[data-testid=presence-item][data-role=agent]")
            await expect(agent_row).to_contain_text("Voice agent")
            for text in await members.all_text_contents():  # names, never raw ids
                assert agent.ws.welcome["connection_id"] not in text
        # The desktop's feed says who came: the phone, then the agent.
        feed = desktop.locator("[data-testid=feed-item][data-kind=presence]")
        await expect(feed.first).to_contain_text("Voice agent joined")
        await expect(feed.nth(1)).to_contain_text("Screen joined by QR joined")
        await screens.shot(desktop, "conversation-desktop-1-agent-joined")
        await screens.shot(phone, "conversation-phone-1-agent-joined")

        # -- the user asks; the agent thinks, runs the quote tool, answers in parts ------
        await agent.say("user", "u1", ASK)
        await agent.state("thinking")
        await agent.step("s1", "intent_recognition", "started")
        for page in pages:
            await expect(message(page, "u1")).to_have_attribute("data-role", "user")
            await expect(message(page, "u1")).to_contain_text("You")  # not "Voice agent"
            await expect(message(page, "u1")).to_contain_text(ASK)
            await expect_agent(page, "thinking")
            await expect(page.get_by_test_id("agent-thinking")).to_be_visible()
            await expect(page.locator("[data-testid=progress-item][data-id=s1]")).to_have_attribute(
                "data-status", "running"
            )
        await screens.shot(desktop, "conversation-desktop-2-thinking")
        await screens.shot(phone, "conversation-phone-2-thinking")

        await agent.step("s1", "intent_recognition", "done", "Shipping quote")
        await agent.step("s2", "tool_execution", "started", "get_shipping_quotes")
        quotes = (await agent.tool("get_shipping_quotes", QUOTE_PARAMS))["quotes"]
        await agent.step("s2", "tool_execution", "done", f"{len(quotes)} rates")
        await agent.state("speaking")
        await agent.say("agent", "a1", ANSWER_PARTS[0], final=False)
        await agent.say("agent", "a1", ANSWER_PARTS[1], final=False)
        for page in pages:
            reply = message(page, "a1")
            await expect(reply).to_have_attribute("data-final", "false")
            await expect(reply.get_by_test_id("message-text")).to_have_text(ANSWER_PARTS[1])
            await expect(page.get_by_test_id("message")).to_have_count(2)  # replaced in place
            await expect(page.get_by_test_id("quote-option")).to_have_count(len(quotes))
            await expect(page.get_by_test_id("agent-thinking")).to_be_hidden()
            await expect_agent(page, "speaking")
        await screens.shot(desktop, "conversation-desktop-3-partial")
        await screens.shot(phone, "conversation-phone-3-partial")

        # -- the user interrupts; ElevenLabs corrects the cut answer --------------------
        await agent.say("agent", "a1", ANSWER_PARTS[2])
        await agent.say("user", "u2", INTERRUPTION)
        await agent.state("listening")
        await agent.say("agent", "a1", ANSWER_CORRECTED)
        for page in pages:
            reply = message(page, "a1")
            await expect(reply).to_have_attribute("data-corrected", "true")
            await expect(reply).to_have_attribute("data-final", "true")
            await expect(reply.get_by_test_id("message-text")).to_have_text(ANSWER_CORRECTED)
            await expect(reply.get_by_test_id("message-corrected")).to_contain_text("Corrected")
            await expect_agent(page, "listening")
        # the earlier wording is one click (or Enter) away
        await message(desktop, "a1").get_by_text("Corrected").click()
        await expect(message(desktop, "a1").get_by_test_id("message-corrected")).to_contain_text(
            "arrives tomorrow"
        )
        assert await messages_of(desktop) == await messages_of(phone)
        assert [m[:2] for m in await messages_of(desktop)] == [
            ["user", "u1"],
            ["agent", "a1"],
            ["user", "u2"],
        ]
        assert await progress_of(desktop) == await progress_of(phone)
        # the agent's steps, and the hub's own run of the tool inside the second one
        assert await progress_of(desktop) == [
            ["step", "s1", "done"],
            ["step", "s2", "done"],
            ["tool", agent.calls[0], "done"],
        ]
        for page in pages:  # the quote started the shipping task
            await expect(page.locator("#task-title")).to_have_text("Shipment")
            await expect(page.get_by_test_id("task-status")).to_have_text("In progress")
        await expect(desktop.get_by_test_id("progress-status").first).to_contain_text("Done")
        await screens.shot(desktop, "conversation-desktop-4-corrected")
        await screens.shot(phone, "conversation-phone-4-corrected")

        # -- the phone picks a quote; the desktop's feed says who, and when -------------
        chosen = quotes[1]
        await phone.locator(
            f'[data-testid=quote-option][data-quote-id="{chosen["quote_id"]}"]'
        ).click()
        await expect(desktop.get_by_test_id("selected-option")).to_have_attribute(
            "data-quote-id", chosen["quote_id"]
        )
        picked = desktop.locator("[data-testid=feed-item][data-kind=state]").first
        await expect(picked).to_contain_text(
            f"Screen joined by QR picked {chosen['carrier']} {chosen['service']}"
        )
        await expect(picked.locator("time")).not_to_be_empty()
        mine = phone.locator("[data-testid=feed-item][data-kind=state]").first
        await expect(mine).to_contain_text(f"This screen picked {chosen['carrier']}")

        # -- the phone is reloaded mid-conversation: it shows it all again ---------------
        # (scrolled where it was: at the rates it picked from, its own place, not the
        # desktop's)
        rates = phone.locator("#quotes-title")
        await rates.scroll_into_view_if_needed()
        await phone.mouse.wheel(0, 120)
        await phone.wait_for_function(
            "() => JSON.parse(sessionStorage.getItem('companion.page-scroll') || '{}').y"
            " === Math.round(scrollY)"
        )
        phone_y = await phone.evaluate("() => Math.round(scrollY)")
        assert phone_y > 200
        before = await messages_of(phone)
        await phone.reload()
        await expect_connected(phone)
        await expect(phone.get_by_test_id("message")).to_have_count(3)
        assert await messages_of(phone) == before == await messages_of(desktop)
        assert await progress_of(phone) == await progress_of(desktop)
        await expect_agent(phone, "listening")
        await expect(phone.get_by_test_id("selected-option")).to_have_attribute(
            "data-quote-id", chosen["quote_id"]
        )
        await expect(
            phone.locator("[data-testid=feed-item][data-kind=state]").first
        ).to_contain_text(f"This screen picked {chosen['carrier']}")
        # (a little higher than it was, if that shows a title the header would cover)
        await phone.wait_for_function(
            "y => window.companion.state && scrollY > 0 && y - 240 <= Math.round(scrollY)"
            " && Math.round(scrollY) <= y",
            arg=phone_y,
        )
        await expect(rates).to_be_in_viewport()
        assert await phone.evaluate(TITLES_UNDER_HEADER) == []
        await screens.shot(phone, "conversation-phone-5-reloaded")
        await screens.shot(phone, "conversation-phone-5-reloaded-full", full_page=True)

        # -- the agent confirms and makes the label ---------------------------------------
        await agent.state("speaking")
        await agent.say("agent", "a2", CONFIRM)
        # The phone is at the rates, its chat out of view: the new message peeks in.
        peek = phone.get_by_test_id("chat-peek")
        await expect(peek).to_be_visible()
        await expect(peek).to_contain_text(f"Voice agent:{CONFIRM}")
        await expect(desktop.get_by_test_id("chat-peek")).to_be_hidden()  # its chat is in view
        await screens.shot(phone, "conversation-phone-6-peek")
        await agent.state("thinking")
        await agent.step("s3", "tool_execution", "started", "create_shipping_label")
        made = await agent.tool("create_shipping_label", {"quote_id": chosen["quote_id"]})
        await agent.step("s3", "tool_execution", "done", "label created")
        await agent.state("speaking")
        await agent.say("agent", "a3", DONE)
        await agent.state("idle")
        tracking = made["label"]["tracking_number"]
        for page in pages:
            await expect(page.get_by_test_id("tracking-number")).to_have_text(tracking)
            await expect(message(page, "a3")).to_contain_text(DONE)
            await expect_agent(page, "idle")
            await expect(page.locator("[data-testid=progress-item][data-id=s3]")).to_have_attribute(
                "data-status", "done"
            )
            await expect(page.get_by_test_id("task-status")).to_have_text("Completed")
            label_run = page.locator(f"[data-testid=progress-item][data-id={agent.calls[1]}]")
            await expect(label_run).to_contain_text("Creating the shipping label")
        assert await messages_of(desktop) == await messages_of(phone)
        assert [m[1] for m in await messages_of(desktop)] == ["u1", "a1", "u2", "a2", "a3"]
        assert await progress_of(desktop) == await progress_of(phone)
        await expect(desktop.get_by_test_id("message").last).to_be_in_viewport()
        await screens.shot(desktop, "conversation-desktop-6-label")
        await screens.shot(desktop, "conversation-desktop-6-label-full", full_page=True)
        await expect(peek).to_contain_text(DONE)
        await screens.shot(phone, "conversation-phone-6-label")
        await peek.click()  # back to the conversation, at its end
        await expect(peek).to_be_hidden()
        await expect(message(phone, "a3")).to_be_in_viewport()
        await phone.wait_for_function(  # the smooth scroll has ended: the chat is at the top
            """() => Math.abs(document.querySelector('#chat-card').getBoundingClientRect().top
                - document.querySelector('.topbar').getBoundingClientRect().bottom - 12) < 3
                || scrollY === 0"""
        )
        await screens.shot(phone, "conversation-phone-6-label-chat")
        await screens.shot(phone, "conversation-phone-6-label-full", full_page=True)

        # -- the desktop's reader scrolls the chat back to the question, and reloads ------
        chat = desktop.locator("#chat-scroll")
        assert await chat.evaluate("c => c.scrollHeight > c.clientHeight + 40")
        await chat.evaluate("c => { c.scrollTop = 0; }")
        await desktop.wait_for_function(
            "() => JSON.parse(sessionStorage.getItem('companion.chat-scroll') || '{}')"
            ".message_id === 'u1'"
        )
        await desktop.reload()
        await expect_connected(desktop)
        await expect(desktop.get_by_test_id("message")).to_have_count(5)
        await desktop.wait_for_function(
            "() => document.querySelector('#chat-scroll').scrollTop < 40"
        )
        await expect(message(desktop, "u1")).to_be_in_viewport()
        assert await messages_of(desktop) == await messages_of(phone)
        await screens.shot(desktop, "conversation-desktop-7-reloaded")
        for page, name in ((desktop, "desktop"), (phone, "phone")):  # the dark theme too
            await page.emulate_media(color_scheme="dark")
            await screens.shot(page, f"conversation-{name}-7-dark")
            await page.emulate_media(color_scheme="light")

        # -- the agent leaves: both pages say there is no agent any more -----------------
        await agent.ws.close()
        for page in pages:
            await expect_agent(page, "none")
            await expect(
                page.locator("[data-testid=feed-item][data-kind=presence]").first
            ).to_contain_text("Voice agent left")
        await screens.shot(desktop, "conversation-desktop-8-agent-left")
        screens.console.assert_clean()
    finally:
        await agent.ws.close()


async def test_an_outage_is_said_in_words_and_the_conversation_survives_it(
    hub: HubProcess, screens: Screens
) -> None:
    owner = token(f"u-{uuid.uuid4().hex[:8]}")
    desktop = await screens.open("desktop", f"{hub.base_url}/?token={owner}")
    await expect_connected(desktop)
    sid = (await desktop.get_by_test_id("session-id").text_content() or "").strip()
    agent = Agent(await connect(hub.ws_url, owner, session_id=sid, client="agent"))
    await agent.state("listening")
    await agent.say("user", "u1", ASK)
    await agent.say("agent", "a1", ANSWER_PARTS[0], final=False)
    await expect(message(desktop, "a1")).to_have_attribute("data-final", "false")
    # Chromium logs each refused connect (the socket's, and any fetch) while the hub is down,
    # and a fetch in flight when the hub is killed as reset.
    down = r"WebSocket connection to '.*' failed|ERR_CONNECTION_REFUSED|ERR_CONNECTION_RESET"
    with screens.console.expecting(down):
        hub.kill()
        outage = desktop.get_by_test_id("outage")
        await expect(outage).to_be_visible()
        await expect(outage).to_contain_text("connection to the session was lost")
        await expect(outage).to_contain_text("as it was at")
        await expect(desktop.locator("body.is-stale")).to_have_count(1)
        await expect_agent(desktop, "unknown")
        await expect(desktop.get_by_test_id("message")).to_have_count(2)  # still on screen
        await screens.shot(desktop, "conversation-desktop-outage")
        hub.start()  # the same port and database
        await expect_connected(desktop, timeout=30_000)  # the backoff's next try
        await expect(outage).to_be_hidden()
        await expect(desktop.locator("body.is-stale")).to_have_count(0)
    # The agent is back too, and finishes its answer: the page continues the same
    # conversation, nothing lost, nothing twice.
    agent = Agent(await connect(hub.ws_url, owner, session_id=sid, client="agent"))
    try:
        await agent.say("agent", "a1", ANSWER_PARTS[2])
        await agent.state("listening")
        await expect(message(desktop, "a1")).to_have_attribute("data-final", "true")
        await expect_agent(desktop, "listening")
        assert [m[:4] for m in await messages_of(desktop)] == [
            ["user", "u1", ASK, "true"],
            ["agent", "a1", ANSWER_PARTS[2], "true"],
        ]
        await screens.shot(desktop, "conversation-desktop-outage-over")
    finally:
        await agent.ws.close()
    screens.console.assert_clean()


async def test_your_sessions_lists_and_restores_an_ended_session(
    hub: HubProcess, screens: Screens
) -> None:
    owner = token(f"u-{uuid.uuid4().hex[:8]}")
    desktop = await screens.open("desktop", f"{hub.base_url}/?token={owner}")
    await expect_connected(desktop)
    old = (await desktop.get_by_test_id("session-id").text_content() or "").strip()
    rows = desktop.get_by_test_id("session-row")
    await expect(rows).to_have_count(1)
    await expect(rows.first).to_contain_text("This session")
    await expect(desktop.get_by_test_id("restore-session")).to_have_count(0)

    # The agent gets quotes and the task is under way; then the session is ended.
    agent = Agent(await connect(hub.ws_url, owner, session_id=old, client="agent"))
    try:
        await agent.tool("get_shipping_quotes", QUOTE_PARAMS)
        tasks = (await agent.ws.request({"type": "get_session_state"}))["state"].get("tasks")
        if not tasks:  # a hub whose tool pack does not start tasks: the agent says it
            task = {
                "task_id": "t1",
                "name": "shipment",
                "status": "active",
                "started_at": 1,
                "ended_at": None,
            }
            patch = {"type": "update_session_state", "patch": {"tasks": [task]}}
            patched = await agent.ws.request(patch)
            assert patched["type"] == "session_state_updated", patched
        await expect(desktop.get_by_test_id("task-status")).to_have_text("In progress")
    finally:
        await agent.ws.close()
    async with httpx.AsyncClient(base_url=hub.base_url) as http:
        ended = await http.delete(f"/sessions/{old}", headers={"Authorization": f"Bearer {owner}"})
        assert ended.status_code in (200, 204), ended.text
    await expect(desktop.get_by_test_id("terminal-message")).to_have_attribute(
        "data-reason", "ended"
    )
    # the ended screen offers it at once, and "Your sessions" lists it
    await expect(desktop.get_by_test_id("terminal-message")).to_contain_text("Restore this session")
    restore = desktop.locator(
        f'[data-testid=session-row][data-session-id="{old}"] [data-testid=restore-session]'
    )
    await expect(restore).to_be_visible()
    await restore.scroll_into_view_if_needed()
    await screens.shot(desktop, "conversation-desktop-sessions-ended")

    await restore.click()
    await expect_connected(desktop)
    await expect(desktop.get_by_test_id("session-id")).not_to_have_text(old)
    new = (await desktop.get_by_test_id("session-id").text_content() or "").strip()
    assert new and new != old
    await expect(desktop.get_by_test_id("terminal-message")).to_be_hidden()
    await expect(desktop.get_by_test_id("quote-option")).to_have_count(5)  # the old state
    await expect(desktop.get_by_test_id("task-status")).to_have_text("In progress")
    restored = desktop.get_by_test_id("restored-note")
    await expect(restored).to_contain_text("continues an earlier one")
    await expect(
        desktop.locator(f'[data-testid=session-row][data-session-id="{new}"]')
    ).to_contain_text("This session")
    await expect(
        desktop.locator(f'[data-testid=session-row][data-session-id="{old}"]')
    ).to_have_attribute("data-status", "ended")
    assert f"session_id={new}" in desktop.url
    await screens.shot(desktop, "conversation-desktop-sessions-restored")
    screens.console.assert_clean()


async def test_tool_runs_and_tasks_show_as_progress_on_every_screen(
    hub: HubProcess, screens: Screens
) -> None:
    """The hub's own tool_call_started/finished around every tool run, and state.tasks
    from the tool pack (a quote starts a shipment, a label completes it; ending the
    session abandons an active one)."""
    owner = token(f"u-{uuid.uuid4().hex[:8]}")
    desktop = await screens.open("desktop", f"{hub.base_url}/?token={owner}")
    await expect_connected(desktop)
    sid = (await desktop.get_by_test_id("session-id").text_content() or "").strip()
    link = desktop.get_by_test_id("join-link")
    await expect(link).to_have_attribute("href", re.compile(r"/join\?token="))
    phone = await screens.open("phone", str(await link.get_attribute("href")), PHONE)
    await expect_connected(phone)
    pages = (desktop, phone)
    agent = Agent(await connect(hub.ws_url, owner, session_id=sid, client="agent"))
    try:
        quotes = (await agent.tool("get_shipping_quotes", QUOTE_PARAMS))["quotes"]
        for page in pages:
            run = page.locator("[data-testid=progress-item][data-kind=tool]")
            await expect(run).to_have_count(1)
            await expect(run).to_have_attribute("data-status", "done")
            await expect(run).to_contain_text("Looking up shipping rates")
            await expect(run.get_by_test_id("progress-status")).to_contain_text(" ms")
            await expect(page.locator("#task-title")).to_have_text("Shipment")
            await expect(page.get_by_test_id("task-status")).to_have_text("In progress")
            await expect(
                page.locator("[data-testid=feed-item][data-kind=state]").first
            ).to_contain_text("Task started: Shipment")

        # A label for a quote that does not exist: the run fails, and says so.
        call = {
            "tool_name": "create_shipping_label",
            "tool_call_id": "toolu_bad",
            "parameters": {"quote_id": "nope", "session_id": sid},
        }
        await agent.ws.send({"type": "client_tool_call", "client_tool_call": call})
        for page in pages:
            await expect(
                page.locator("[data-testid=progress-item][data-id=toolu_bad]")
            ).to_have_attribute("data-status", "failed")

        await agent.tool("create_shipping_label", {"quote_id": quotes[0]["quote_id"]})
        for page in pages:
            await expect(page.get_by_test_id("task-status")).to_have_text("Completed")
            await expect(
                page.locator("[data-testid=feed-item][data-kind=state]").first
            ).to_contain_text("Task completed: Shipment")
        await screens.shot(desktop, "conversation-desktop-tasks-completed", full_page=True)

        # Another shipment: the completed one folds away under "Earlier task".
        await agent.tool("get_shipping_quotes", {**QUOTE_PARAMS, "weight": 12})
        for page in pages:
            await expect(page.get_by_test_id("task-status")).to_have_text("In progress")
            earlier = page.get_by_test_id("earlier-task")
            await expect(earlier).to_have_count(1)
            await expect(earlier).to_have_attribute("data-status", "completed")
            await expect(earlier).not_to_have_attribute("open", "")
            assert await progress_of(page) == await progress_of(desktop)
        await screens.shot(desktop, "conversation-desktop-tasks-second", full_page=True)
        await screens.shot(phone, "conversation-phone-tasks-second", full_page=True)
    finally:
        await agent.ws.close()

    # Ended with a shipment under way: it is marked abandoned.
    async with httpx.AsyncClient(base_url=hub.base_url) as http:
        ended = await http.delete(f"/sessions/{sid}", headers={"Authorization": f"Bearer {owner}"})
        assert ended.status_code == 200, ended.text
    for page in pages:
        await expect(page.get_by_test_id("task-status")).to_have_text("Abandoned")
    await screens.shot(desktop, "conversation-desktop-tasks-abandoned")
    screens.console.assert_clean()
