"""LiveKit Agents on the hub: a real ``AgentSession`` (text input, the framework's own
LLM interface answered by a script, no network) linked to a real hub by
``companion_ws.integrations.livekit_agents.attach``; real screens."""

from __future__ import annotations

import json
from typing import Any

from livekit.agents import (  # companion-ws[livekit], in the test extra
    Agent,
    AgentSession,
    RunResult,
)

from companion_ws.integrations.livekit_agents import HubLink, attach
from companion_ws.tools.registry import ToolRegistry
from tests.support.frames import eventually, frames_until
from tests.support.hub import HubProcess
from tests.support.scripted_livekit import ScriptedLLM, Turn
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


class Running:
    def __init__(self, session: AgentSession[Any], model: ScriptedLLM, hub: HubLink) -> None:
        self.session, self.model, self.hub = session, model, hub


async def _linked(shared_hub: HubProcess, sid: str, tok: str, turns: list[Turn]) -> Running:
    model = ScriptedLLM(turns)
    session: AgentSession[Any] = AgentSession(llm=model)
    await session.start(Agent(instructions="You ship parcels."))
    hub = await attach(session, hub_url=shared_hub.ws_url, token=tok, session_id=sid, tools=TOOLS)
    return Running(session, model, hub)


async def test_a_livekit_conversation_reaches_the_screens_as_an_elevenlabs_one(
    shared_hub: HubProcess, screen: tuple[WS, str, str]
) -> None:
    ui, sid, tok = screen
    call = ("get_shipping_quotes", QUOTE_PARAMS, "call_quotes_1")
    run = await _linked(shared_hub, sid, tok, [Turn(calls=[call]), Turn(ANSWER)])
    result: RunResult[None] = await run.session.run(user_input=ASK)
    result.expect.skip_next_event_if(type="message", role="user")
    result.expect.next_event().is_function_call(name="get_shipping_quotes")
    output = result.expect.next_event().is_function_call_output()
    assert json.loads(output.event().item.output)["shipping_details"]["to"] == "10001"
    result.expect.next_event().is_message(role="assistant")

    got = await frames_until(ui, speech_ended())
    assert seen(got) == with_elevenlabs()
    # The hub ran the tool: the state every screen reads.
    update = next(f for f in got if f["type"] == "tool_call_finished")
    assert update["is_error"] is False
    await run.hub.aclose()
    await ui.recv_until(lambda f: f["type"] == "agent_state" and f["state"] == "idle")
    await run.session.aclose()


async def test_a_repeated_call_id_runs_once_and_screens_reach_the_agent(
    shared_hub: HubProcess, screen: tuple[WS, str, str]
) -> None:
    ui, sid, tok = screen
    call = ("get_shipping_quotes", QUOTE_PARAMS, "call_quotes_2")
    turns = [Turn(calls=[call]), Turn("Here."), Turn(calls=[call]), Turn("Same."), Turn("Ok.")]
    run = await _linked(shared_hub, sid, tok, turns)
    await run.session.run(user_input=ASK)
    again: RunResult[None] = await run.session.run(user_input="Again please")
    again.expect.skip_next_event_if(type="message", role="user")
    again.expect.next_event().is_function_call(name="get_shipping_quotes")
    second = again.expect.next_event().is_function_call_output().event().item
    assert second.is_error is False and json.loads(second.output)["quotes"]
    await ran_once(ui, "call_quotes_2")

    # A screen's contextual_update reaches the agent's next turn.
    await ui.request({"type": "contextual_update", "text": "user_zoomed", "data": {"map": 2}})
    agent = run.session.current_agent
    await eventually(lambda: any("user_zoomed" in (m.text_content or "")
                                 for m in agent.chat_ctx.messages()))  # fmt: skip
    await run.session.run(user_input="What now?")
    assert run.model.told()[-1] == 'Update from the screen: user_zoomed ({"map":2})'
    await run.hub.aclose()
    await run.session.aclose()

    # A second agent on the same session first hears where it stands.
    later = await _linked(shared_hub, sid, tok, [Turn("Welcome back.")])
    await later.session.run(user_input="Hello?")
    state = await ui.request({"type": "get_session_state"})
    assert later.model.told()[1] == create_session_context(state["state"])
    await later.hub.aclose()
    await later.session.aclose()
