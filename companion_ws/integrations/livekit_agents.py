"""LiveKit Agents on the hub: one ``AgentSession``, one hub session (``pip install
'companion-ws[livekit]'``; docs/livekit.md).

    AgentSession  <-- events, tools, chat context -->  HubLink  <-- SessionLink -->  hub

An adapter on the voice-platform seam (:mod:`~companion_ws.integrations.platform`)::

    await session.start(agent=agent, room=room)
    hub = await attach(session, hub_url=..., token=..., session_id=..., tools=registry)

- ``agent_state_changed`` -> ``agent_state`` (``initializing`` is not a screen state);
- ``user_input_transcribed`` (interim) -> ``transcript`` user ``final: false``; the
  committed user turn (``conversation_item_added``, role ``user``) -> ``final: true``
  with the same ``message_id``;
- ``conversation_item_added`` (role ``assistant``) -> ``transcript`` agent ``final:
  true``: the text the user heard (LiveKit truncates an interrupted message);
- the hub's tools are added to the agent as raw function tools: each call runs through
  the hub once per LiveKit ``call_id``; an error result is a ``ToolError`` for the LLM;
- what the agent should be told (the session's summary on attach and on resume, what a
  screen or a backend changed or said) is added to the agent's chat context as a
  ``system`` message, in order.

All through the link's one connection, so the screens see the same section 13 frames,
in the same order, as with the ElevenLabs bridge.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from livekit.agents import Agent, AgentSession, RunContext, function_tool, llm
from livekit.agents.voice.events import (
    AgentStateChangedEvent,
    ConversationItemAddedEvent,
    UserInputTranscribedEvent,
)

from companion_ws.integrations.platform import LinkedAgent, SessionLink, Token
from companion_ws.integrations.voice_frames import AgentStateName
from companion_ws.tools.registry import Tool, ToolRegistry

__all__ = ["HubLink", "attach", "hub_tools"]

log = logging.getLogger("companion_ws.livekit")

#: LiveKit's agent states as the screens know them (``initializing`` is none of theirs).
_SCREEN_STATES: dict[str, AgentStateName] = {
    "idle": "idle",
    "listening": "listening",
    "thinking": "thinking",
    "speaking": "speaking",
}


def hub_tools(link: SessionLink, tools: ToolRegistry) -> list[llm.RawFunctionTool[Any, Any]]:
    """The hub's tools as LiveKit raw function tools that run through ``link``."""
    return [_tool(link, t) for t in tools]


def _tool(link: SessionLink, t: Tool) -> llm.RawFunctionTool[Any, Any]:
    async def run(raw_arguments: dict[str, object], context: RunContext[Any]) -> str:
        call = context.function_call
        answer = await link.call_tool(t.name, call.call_id or None, dict(raw_arguments))
        if answer.is_error:
            raise llm.ToolError(answer.text)
        return answer.text

    schema = {"name": t.name, "description": t.description, "parameters": t.schema()}
    return function_tool(run, raw_schema=schema)


class HubLink(LinkedAgent):
    """One ``AgentSession`` linked to one hub session; :meth:`aclose` to leave."""

    def __init__(self, session: AgentSession[Any], link: SessionLink) -> None:
        super().__init__(link)
        self.session = session
        self._closing: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ AgentSession -> screens

    def listen(self) -> None:
        self.session.on("agent_state_changed", self._state)
        self.session.on("user_input_transcribed", self._heard)
        self.session.on("conversation_item_added", self._item)
        self.session.on("close", lambda _: self._close_soon())

    def _close_soon(self) -> None:
        if self._closing is None:
            self._closing = asyncio.ensure_future(self.aclose())

    def _state(self, event: AgentStateChangedEvent) -> None:
        state = _SCREEN_STATES.get(event.new_state)
        if state is not None:
            self.link.publish(self.link.frames.agent_state(state))

    def _heard(self, event: UserInputTranscribedEvent) -> None:
        if not event.is_final and event.transcript:
            self.link.publish(self.link.frames.user_partial(event.transcript))

    def _item(self, event: ConversationItemAddedEvent) -> None:
        item = event.item
        if not isinstance(item, llm.ChatMessage):
            return  # a handoff
        text = item.text_content or ""
        if item.role == "user" and text:
            self.link.publish(self.link.frames.user_said(text))
        elif item.role == "assistant" and text:
            self.link.publish(self.link.frames.agent_said(text, speaking=False))

    # ------------------------------------------------------------ hub -> the agent

    async def tell(self) -> None:
        """Add what the agent should be told to its chat context, in order."""
        while True:
            await self.told(await self.link.told())

    async def told(self, text: str) -> None:
        agent = self.session.current_agent
        context = agent.chat_ctx.copy()
        context.add_message(role="system", content=text)
        await agent.update_chat_ctx(context)
        log.debug("livekit: told the agent %r", text)


async def attach(
    session: AgentSession[Any],
    *,
    hub_url: str,
    token: Token,
    session_id: str,
    tools: ToolRegistry,
    agent: Agent | None = None,
    transcripts: bool = True,
) -> HubLink:
    """Link a started ``AgentSession`` to a hub session: its conversation mirrored to
    the screens, the hub's tools added to ``agent`` (default: the session's current
    agent), and what the screens do told to the agent."""
    link = SessionLink(hub_url, token, session_id, transcripts=transcripts)
    await link.open()
    target = agent or session.current_agent
    await target.update_tools([*target.tools, *hub_tools(link, tools)])
    linked = HubLink(session, link)
    while not link.nothing_to_tell():  # the summary is in the context before any turn
        await linked.told(await link.told())
    linked.listen()
    state = _SCREEN_STATES.get(session.agent_state)
    if state is not None:
        link.publish(link.frames.agent_state(state))
    link.spawn(linked.tell())
    link.spawn(link.watch())
    return linked
