"""The companion page shows a Pipecat-driven conversation exactly as an ElevenLabs one:
the same exchange carried by the ElevenLabs bridge (the real SDK against the local
ElevenLabs-protocol stand-in) and by a real Pipecat pipeline (tests/support/
scripted_pipecat.py), each on its own session and page, reads the same on both pages.

Screenshots: ``test-artifacts/e2e/{sqlite,postgres}/platform-{elevenlabs,pipecat}.png``.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import pytest
from pipecat.frames.frames import InterimTranscriptionFrame
from playwright.async_api import Page

from companion_ws.integrations.pipecat_hub import PipecatHub
from companion_ws.tools.registry import ToolRegistry
from tests.e2e.conftest import Screens
from tests.e2e.test_conversation_page import expect_agent, expect_connected, messages_of
from tests.support.fake_elevenlabs import FakeElevenLabs
from tests.support.hub import HubProcess, token
from tests.support.scripted_pipecat import Bot, Turn
from tests.support.voice_script import ANSWER, ASK, QUOTE_PARAMS

pytestmark = pytest.mark.browser

TOOLS = ToolRegistry.from_modules(["companion_ws.tools.shipping"])
THEN = "Thanks, and"  # the user starts again: a partial transcript, the agent listening


async def _page(hub: HubProcess, screens: Screens, name: str) -> tuple[Page, str, str]:
    owner = token(f"u-{uuid.uuid4().hex[:8]}")
    page = await screens.open(name, f"{hub.base_url}/?token={owner}")
    await expect_connected(page)
    sid = (await page.get_by_test_id("session-id").text_content() or "").strip()
    return page, sid, owner


async def shown(page: Page) -> dict[str, Any]:
    """What the page shows of the conversation, ids left out."""
    messages = [[role, text, final, corrected] for role, _, text, final, corrected in
                await messages_of(page)]  # fmt: skip
    progress: list[list[str]] = await page.evaluate(
        """() => [...document.querySelectorAll('[data-testid=progress-item]')].map((p) => [
            p.dataset.kind, p.dataset.status, p.textContent.trim()])"""
    )
    # Without the run's duration and clock time ("Done · 1 ms11:57:06 PM").
    progress = [
        [kind, status, re.sub(r" · \d+ ms.*$", "", text)] for kind, status, text in progress
    ]
    task = await page.get_by_test_id("task").inner_text()
    state = await page.get_by_test_id("agent-state").get_attribute("data-state")
    return {"messages": messages, "progress": progress, "task": task, "state": state}


async def _answered(page: Page) -> None:
    for _ in range(100):
        if any(m[1] == ANSWER for m in (await shown(page))["messages"]):
            return
        await asyncio.sleep(0.1)
    raise AssertionError(await shown(page))


async def _settled(page: Page) -> dict[str, Any]:
    """The page once the exchange is all there (the partial is the last thing sent)."""
    await expect_agent(page, "listening")
    for _ in range(100):
        now = await shown(page)
        if now["messages"] and now["messages"][-1][1] == THEN:
            return now
        await asyncio.sleep(0.1)
    raise AssertionError(await shown(page))


async def test_a_pipecat_conversation_looks_as_an_elevenlabs_one(
    shared_hub: HubProcess, screens: Screens
) -> None:
    # ElevenLabs: the bridge, the real SDK, the stand-in platform.
    el_page, el_sid, el_owner = await _page(shared_hub, screens, "elevenlabs")
    async with FakeElevenLabs() as platform:
        bridge = platform.bridge(shared_hub.ws_url, el_sid, el_owner, TOOLS)
        running = asyncio.create_task(bridge.run())
        conv = await platform.conversation()
        await expect_agent(el_page, "listening")
        await conv.user_said(ASK)
        call_id = await conv.call_tool(
            "get_shipping_quotes", {**QUOTE_PARAMS, "session_id": el_sid}
        )
        assert (await conv.tool_result(call_id))["is_error"] is False
        await conv.say(ANSWER)
        await expect_agent(el_page, "speaking")
        await conv.send(
            {
                "type": "tentative_user_transcript",
                "tentative_user_transcription_event": {"user_transcript": THEN, "event_id": 2},
            }
        )
        elevenlabs = await _settled(el_page)
        await screens.shot(el_page, "platform-elevenlabs")
        bridge.stop()
        await asyncio.wait_for(running, 15)

    # Pipecat: a real pipeline, its LLM scripted, the same exchange.
    pc_page, pc_sid, pc_owner = await _page(shared_hub, screens, "pipecat")
    call = ("get_shipping_quotes", QUOTE_PARAMS, "call_pc_1")
    hub = PipecatHub(hub_url=shared_hub.ws_url, token=pc_owner, session_id=pc_sid, tools=TOOLS)
    bot = Bot(hub, [Turn(calls=[call]), Turn(ANSWER)])
    await bot.start()
    try:
        await bot.user_says(ASK)
        await _answered(pc_page)
        await bot.worker.queue_frame(InterimTranscriptionFrame(THEN, "user", ""))
        pipecat = await _settled(pc_page)
        await screens.shot(pc_page, "platform-pipecat")
    finally:
        await bot.stop()

    assert pipecat == elevenlabs
    assert [m[0] for m in pipecat["messages"]] == ["user", "agent", "user"]
