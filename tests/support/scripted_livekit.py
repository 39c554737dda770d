"""A scripted LLM for LiveKit Agents: the framework's own ``llm.LLM`` / ``LLMStream``
interface, answering each turn from a script instead of a provider (no network).

Each turn is text, tool calls, or both; every chat context it was asked with is kept,
so a test reads what the agent was told.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from livekit.agents import llm
from livekit.agents.types import DEFAULT_API_CONNECT_OPTIONS, APIConnectOptions


@dataclass(frozen=True)
class Turn:
    text: str = ""
    #: (tool name, arguments, call_id)
    calls: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)


class ScriptedLLM(llm.LLM[Any]):
    def __init__(self, turns: list[Turn]) -> None:
        super().__init__()
        self.turns = list(turns)
        self.contexts: list[llm.ChatContext] = []

    def chat(
        self,
        *,
        chat_ctx: llm.ChatContext,
        tools: list[llm.Tool] | None = None,
        conn_options: APIConnectOptions = DEFAULT_API_CONNECT_OPTIONS,
        **_: Any,
    ) -> llm.LLMStream:
        self.contexts.append(chat_ctx.copy())
        turn = self.turns.pop(0) if self.turns else Turn("")
        return _Stream(self, turn, chat_ctx=chat_ctx, tools=tools or [], conn_options=conn_options)

    def told(self) -> list[str]:
        """The system messages of the latest turn's context (the instructions first)."""
        if not self.contexts:
            return []
        messages = self.contexts[-1].messages()
        return [m.text_content or "" for m in messages if m.role == "system"]


class _Stream(llm.LLMStream):
    def __init__(self, model: ScriptedLLM, turn: Turn, **kwargs: Any) -> None:
        super().__init__(model, **kwargs)
        self._turn = turn

    async def _run(self) -> None:
        turn = self._turn
        if turn.calls:
            calls = [
                llm.FunctionToolCall(name=name, arguments=json.dumps(args), call_id=call_id)
                for name, args, call_id in turn.calls
            ]
            delta = llm.ChoiceDelta(role="assistant", tool_calls=calls)
            self._event_ch.send_nowait(llm.ChatChunk(id="scripted", delta=delta))
        if turn.text:
            delta = llm.ChoiceDelta(role="assistant", content=turn.text)
            self._event_ch.send_nowait(llm.ChatChunk(id="scripted", delta=delta))
