"""Pipecat on the hub: one pipeline, one hub session (``pip install pipecat-ai``;
docs/pipecat.md).

    Pipecat pipeline  <-- an observer, function schemas, the worker's queue -->  PipecatHub
        <-- SessionLink -->  hub

An adapter on the voice-platform seam (:mod:`~companion_ws.integrations.platform`)::

    hub = PipecatHub(hub_url=..., token=..., session_id=..., tools=registry)
    context = LLMContext(messages, tools=ToolsSchema(standard_tools=hub.functions))
    ...
    await hub.attach(worker)  # the PipelineWorker, before it runs

What the pipeline does, as the screens see it (``StartFrame``: the agent is ready,
``listening``) (the same section 13 frames, in the same
order, as with the ElevenLabs bridge); the frames Pipecat's RTVI observer turns into
its client messages, so the two never disagree about what the user saw:

- ``InterimTranscriptionFrame`` -> ``transcript`` user ``final: false``;
  ``TranscriptionFrame`` -> the same message ``final: true``, then ``thinking``;
- ``BotStartedSpeakingFrame`` -> ``speaking``; the ``TTSTextFrame`` texts (what was
  spoken: RTVI's ``bot-output``; ``bot-transcription`` has the same words) up to
  ``BotStoppedSpeakingFrame`` or an ``InterruptionFrame`` -> one ``transcript`` agent
  ``final: true``, then ``listening``;
- each hub tool is a ``FunctionSchema`` whose handler runs it through the hub once per
  Pipecat ``tool_call_id``, after the observer has passed the call's
  ``FunctionCallsStartedFrame`` (so what was said first reaches the screens first);
- what the agent should be told (the summary on attach and on resume, what a screen or
  a backend changed or said) is queued as ``LLMMessagesAppendFrame`` (a ``system``
  message, ``run_llm=False``) into the pipeline's context;
- ``EndFrame`` / ``CancelFrame``: the agent leaves (``idle``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from openai.types.chat import ChatCompletionSystemMessageParam
from pipecat.adapters.llm.schemas.function_schema import FunctionSchema
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    CancelFrame,
    EndFrame,
    FunctionCallsStartedFrame,
    InterimTranscriptionFrame,
    InterruptionFrame,
    LLMMessagesAppendFrame,
    StartFrame,
    TranscriptionFrame,
    TTSTextFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.pipeline.worker import PipelineWorker
from pipecat.services.llm_service import FunctionCallParams

from companion_ws.integrations.platform import LinkedAgent, SessionLink, Token
from companion_ws.tools.registry import Tool, ToolRegistry

__all__ = ["PipecatHub"]

log = logging.getLogger("companion_ws.pipecat")

#: Seconds a tool handler waits for the observer to reach its call before it runs anyway.
CATCH_UP = 2.0


class _Observer(BaseObserver):
    """Reads every frame once (its first push), in the pipeline's order."""

    def __init__(self, on_frame: Callable[[Any], Awaitable[None]]) -> None:
        super().__init__()
        self._on_frame = on_frame

    async def on_push_frame(self, data: FramePushed) -> None:
        if data.first_push:
            await self._on_frame(data.frame)


class PipecatHub(LinkedAgent):
    """One Pipecat pipeline linked to one hub session (see the module's docstring)."""

    def __init__(
        self,
        *,
        hub_url: str,
        token: Token,
        session_id: str,
        tools: ToolRegistry,
        transcripts: bool = True,
    ) -> None:
        super().__init__(SessionLink(hub_url, token, session_id, transcripts=transcripts))
        self.observer: BaseObserver = _Observer(self._saw)
        self.functions = [self._function(t) for t in tools]
        self.worker: PipelineWorker | None = None
        self._spoken: list[str] = []
        self._calls_seen: dict[str, asyncio.Event] = {}
        self._closing: asyncio.Future[None] | None = None

    async def attach(self, worker: PipelineWorker) -> None:
        """Join the session; watch ``worker``'s pipeline; queue the summary first."""
        self.worker = worker
        await self.link.open()
        worker.add_observer(self.observer)
        self.link.spawn(self._tell())
        self.link.spawn(self.link.watch())

    # ------------------------------------------------------------ pipeline -> screens

    async def _saw(self, frame: Any) -> None:
        link, frames = self.link, self.link.frames
        if isinstance(frame, StartFrame):
            link.publish(frames.ready())
        elif isinstance(frame, InterimTranscriptionFrame) and frame.text:
            link.publish(frames.user_partial(frame.text))
        elif isinstance(frame, TranscriptionFrame) and frame.text:
            link.publish(frames.user_said(frame.text))
        elif isinstance(frame, BotStartedSpeakingFrame):
            link.publish(frames.agent_state("speaking"))
        elif isinstance(frame, TTSTextFrame) and frame.text:
            self._spoken.append(frame.text)
        elif isinstance(frame, BotStoppedSpeakingFrame | InterruptionFrame):
            self._spoke()
            link.publish(frames.mode("listening"))
        elif isinstance(frame, FunctionCallsStartedFrame):
            for call in frame.function_calls:
                self._seen(call.tool_call_id).set()
        elif isinstance(frame, EndFrame | CancelFrame):
            self._spoke()
            self._closing = asyncio.ensure_future(self.aclose())

    def _spoke(self) -> None:
        """What the bot said since it started speaking, as one final message."""
        text = " ".join(part.strip() for part in self._spoken if part.strip())
        self._spoken = []
        if text:
            self.link.publish(self.link.frames.agent_said(text, speaking=False))

    def _seen(self, tool_call_id: str) -> asyncio.Event:
        return self._calls_seen.setdefault(tool_call_id, asyncio.Event())

    # ------------------------------------------------------------ tools

    def _function(self, t: Tool) -> FunctionSchema:
        schema = t.schema()

        async def handler(params: FunctionCallParams) -> None:
            call_id = params.tool_call_id
            try:  # what was said before the call is queued for the screens first
                await asyncio.wait_for(self._seen(call_id).wait(), CATCH_UP)
            except TimeoutError:
                log.warning("pipecat: tool call %s ran before the observer saw it", call_id)
            self._calls_seen.pop(call_id, None)
            answer = await self.link.call_tool(t.name, call_id, dict(params.arguments))
            try:
                result: Any = json.loads(answer.text)
            except ValueError:
                result = answer.text
            await params.result_callback(result)

        return FunctionSchema(
            name=t.name,
            description=t.description,
            properties=schema.get("properties", {}),
            required=list(schema.get("required", [])),
            handler=handler,
        )

    # ------------------------------------------------------------ hub -> the context

    async def _tell(self) -> None:
        while True:
            text = await self.link.told()
            worker = self.worker
            assert worker is not None
            message: ChatCompletionSystemMessageParam = {"role": "system", "content": text}
            await worker.queue_frame(LLMMessagesAppendFrame(messages=[message], run_llm=False))
            log.debug("pipecat: told the agent %r", text)
