"""A Pipecat pipeline for tests, no network: the framework's own context aggregators,
``LLMService`` (answering each turn from a script) and worker; a speaker standing in
for TTS and the output transport (it says what the LLM wrote, between
``BotStartedSpeakingFrame`` and ``BotStoppedSpeakingFrame``, as ``TTSTextFrame``s).

Input is scripted as a transport with external turn detection (a VAD) pushes it:
``UserStartedSpeakingFrame``, transcription frames, ``UserStoppedSpeakingFrame``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from pipecat.adapters.llm.schemas.tools_schema import ToolsSchema
from pipecat.frames.frames import (
    BotStartedSpeakingFrame,
    BotStoppedSpeakingFrame,
    EndFrame,
    Frame,
    FunctionCallFromLLM,
    LLMContextFrame,
    LLMFullResponseEndFrame,
    LLMFullResponseStartFrame,
    LLMTextFrame,
    OutputTransportMessageUrgentFrame,
    TranscriptionFrame,
    TTSTextFrame,
    UserStartedSpeakingFrame,
    UserStoppedSpeakingFrame,
)
from pipecat.observers.base_observer import BaseObserver, FramePushed
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.worker import PipelineWorker
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.aggregators.llm_response_universal import (
    LLMContextAggregatorPair,
    LLMUserAggregatorParams,
)
from pipecat.processors.frame_processor import FrameDirection, FrameProcessor
from pipecat.services.llm_service import LLMService
from pipecat.turns.user_turn_strategies import ExternalUserTurnStrategies
from pipecat.workers.runner import WorkerRunner

from companion_ws.integrations.pipecat_hub import PipecatHub


@dataclass(frozen=True)
class Turn:
    text: str = ""
    #: (tool name, arguments, tool_call_id)
    calls: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)


class ScriptedLLM(LLMService):
    def __init__(self, turns: list[Turn]) -> None:
        super().__init__()
        self.turns = list(turns)
        self.contexts: list[list[Any]] = []

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if not isinstance(frame, LLMContextFrame):
            await self.push_frame(frame, direction)
            return
        self.contexts.append(list(frame.context.get_messages()))
        turn = self.turns.pop(0) if self.turns else Turn()
        await self.push_frame(LLMFullResponseStartFrame())
        if turn.text:
            await self.push_frame(LLMTextFrame(turn.text))
        await self.push_frame(LLMFullResponseEndFrame())
        calls = [
            FunctionCallFromLLM(
                function_name=name, tool_call_id=call_id, arguments=args, context=frame.context
            )
            for name, args, call_id in turn.calls
        ]
        await self.run_function_calls(calls)

    def told(self) -> list[str]:
        """The system messages of the latest turn's context."""
        latest = self.contexts[-1] if self.contexts else []
        return [str(m.get("content")) for m in latest if m.get("role") == "system"]


class Speaker(FrameProcessor):
    """TTS and the output transport, for a test: speaks the LLM's text at once."""

    def __init__(self) -> None:
        super().__init__()
        self._speaking = False

    async def process_frame(self, frame: Frame, direction: FrameDirection) -> None:
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMTextFrame):
            if not self._speaking:
                self._speaking = True
                await self.broadcast_frame(BotStartedSpeakingFrame)
            await self.push_frame(TTSTextFrame(frame.text, text_type="sentence"))
            return
        await self.push_frame(frame, direction)
        if isinstance(frame, LLMFullResponseEndFrame) and self._speaking:
            self._speaking = False
            await self.broadcast_frame(BotStoppedSpeakingFrame)


class RTVIMessages(BaseObserver):
    """The RTVI messages the pipeline sends its client (with ``enable_rtvi``)."""

    def __init__(self) -> None:
        super().__init__()
        self.messages: list[dict[str, Any]] = []

    async def on_push_frame(self, data: FramePushed) -> None:
        frame = data.frame
        if data.first_push and isinstance(frame, OutputTransportMessageUrgentFrame):
            message = frame.message
            if isinstance(message, dict):
                self.messages.append(message)


class Bot:
    """A pipeline linked to the hub by ``PipecatHub``, running until :meth:`stop`."""

    def __init__(self, hub: PipecatHub, turns: list[Turn], *, rtvi: bool = False) -> None:
        self.hub = hub
        self.rtvi = RTVIMessages()
        self.llm = ScriptedLLM(turns)
        context = LLMContext(
            [{"role": "system", "content": "You ship parcels."}],
            tools=ToolsSchema(standard_tools=hub.functions),
        )
        turns_by = LLMUserAggregatorParams(user_turn_strategies=ExternalUserTurnStrategies())
        pair = LLMContextAggregatorPair(context, user_params=turns_by)
        pipeline = Pipeline([pair.user(), self.llm, Speaker(), pair.assistant()])
        self.worker = PipelineWorker(
            pipeline, cancel_on_idle_timeout=False, enable_rtvi=rtvi, observers=[self.rtvi]
        )
        self.runner = WorkerRunner()
        self._run: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.hub.attach(self.worker)
        started = asyncio.Event()

        @self.worker.event_handler("on_pipeline_started")  # type: ignore[untyped-decorator]
        async def _started(worker: Any, frame: Any) -> None:
            started.set()

        await self.runner.add_workers(self.worker)
        self._run = asyncio.create_task(self.runner.run())
        await asyncio.wait_for(started.wait(), 10)

    async def user_says(self, text: str) -> None:
        await self.worker.queue_frames(
            [
                UserStartedSpeakingFrame(),
                TranscriptionFrame(text, "user", ""),
                UserStoppedSpeakingFrame(),
            ]
        )

    async def stop(self) -> None:
        await self.worker.queue_frame(EndFrame())
        assert self._run is not None
        await asyncio.wait_for(self._run, 10)
        await self.hub.aclose()
