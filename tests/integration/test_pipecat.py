"""Pipecat on the hub: a real Pipecat pipeline (the framework's context aggregators,
LLM service base and worker; a scripted LLM and a stand-in speaker, no network)
linked to a real hub by ``companion_ws.integrations.pipecat_hub.PipecatHub``; real
screens."""

from __future__ import annotations

import json

from companion_ws.integrations.pipecat_hub import PipecatHub
from companion_ws.tools.registry import ToolRegistry
from tests.support.frames import eventually, frames_until
from tests.support.hub import HubProcess
from tests.support.scripted_pipecat import Bot, Turn
from tests.support.voice_script import (
    ANSWER,
    ASK,
    QUOTE_PARAMS,
    ran_once,
    seen,
    speech_ended,
    with_elevenlabs,
)
from tests.support.ws import WS
from ui_state import create_session_context

TOOLS = ToolRegistry.from_modules(["companion_ws.tools.shipping"])


def _bot(shared_hub: HubProcess, sid: str, tok: str, turns: list[Turn]) -> Bot:
    hub = PipecatHub(hub_url=shared_hub.ws_url, token=tok, session_id=sid, tools=TOOLS)
    return Bot(hub, turns)


async def test_a_pipecat_conversation_reaches_the_screens_as_an_elevenlabs_one(
    shared_hub: HubProcess, screen: tuple[WS, str, str]
) -> None:
    ui, sid, tok = screen
    call = ("get_shipping_quotes", QUOTE_PARAMS, "call_quotes_1")
    bot = _bot(shared_hub, sid, tok, [Turn(calls=[call]), Turn(ANSWER)])
    await bot.start()
    await bot.user_says(ASK)
    got = await frames_until(ui, speech_ended())
    assert seen(got) == with_elevenlabs()
    finished = next(f for f in got if f["type"] == "tool_call_finished")
    assert finished["is_error"] is False
    # The tool's result reached the LLM's context, as Pipecat puts it there.
    tool_messages = [m for m in bot.llm.contexts[-1] if m.get("role") == "tool"]
    assert json.loads(tool_messages[0]["content"])["shipping_details"]["to"] == "10001"
    await bot.stop()
    await ui.recv_until(lambda f: f["type"] == "agent_state" and f["state"] == "idle")


async def test_a_repeated_tool_call_id_runs_once_and_screens_reach_the_context(
    shared_hub: HubProcess, screen: tuple[WS, str, str]
) -> None:
    ui, sid, tok = screen
    call = ("get_shipping_quotes", QUOTE_PARAMS, "call_quotes_2")
    turns = [Turn(calls=[call]), Turn("Here."), Turn(calls=[call]), Turn("Same."), Turn("Ok.")]
    bot = _bot(shared_hub, sid, tok, turns)
    await bot.start()
    await bot.user_says(ASK)
    await frames_until(ui, speech_ended())
    await bot.user_says("Again please")
    await frames_until(ui, speech_ended())
    results = [m for m in bot.llm.contexts[-1] if m.get("role") == "tool"]
    assert len(results) == 2 and results[0]["content"] == results[1]["content"]
    await ran_once(ui, "call_quotes_2")

    # A screen's contextual_update reaches the pipeline's context, then the LLM.
    await ui.request({"type": "contextual_update", "text": "user_zoomed", "data": {"map": 2}})
    told = 'Update from the screen: user_zoomed ({"map":2})'
    await bot.user_says("What now?")
    await eventually(lambda: len(bot.llm.contexts) == 5)
    assert bot.llm.told()[-1] == told
    await bot.stop()

    # A second pipeline on the same session first hears where it stands.
    later = _bot(shared_hub, sid, tok, [Turn("Welcome back.")])
    await later.start()
    await later.user_says("Hello?")
    await eventually(lambda: len(later.llm.contexts) == 1)
    state = await ui.request({"type": "get_session_state"})
    assert later.llm.told()[1] == create_session_context(state["state"])
    await later.stop()


async def test_rtvi_and_the_screens_agree_on_what_was_said(
    shared_hub: HubProcess, screen: tuple[WS, str, str]
) -> None:
    ui, sid, tok = screen
    hub = PipecatHub(hub_url=shared_hub.ws_url, token=tok, session_id=sid, tools=TOOLS)
    bot = Bot(hub, [Turn(ANSWER)], rtvi=True)
    await bot.start()
    await bot.user_says(ASK)
    got = await frames_until(ui, speech_ended())
    await bot.stop()
    screens_saw = [(f["role"], f["text"]) for f in got if f["type"] == "transcript"]
    # What an RTVI client shows: the user's final transcription, the bot's transcription.
    rtvi_saw: list[tuple[str, str]] = []
    for message in bot.rtvi.messages:
        data = message.get("data") or {}
        if message.get("type") == "user-transcription" and data.get("final"):
            rtvi_saw.append(("user", data["text"]))
        elif message.get("type") == "bot-transcription":
            rtvi_saw.append(("agent", data["text"]))
    assert screens_saw == rtvi_saw == [("user", ASK), ("agent", ANSWER)]
