"""The ElevenLabs SDK, adapted for the bridge: its imports (quieted), an audio interface
with no devices, and a conversation that says when the agent is ready.

The one place the bridge touches the SDK's types, so an SDK upgrade is read here.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Awaitable, Callable
from typing import Any

with warnings.catch_warnings():
    # elevenlabs 2.78 annotates AsyncConversation with a deprecated websockets alias.
    warnings.filterwarnings("ignore", "websockets.WebSocketClientProtocol", DeprecationWarning)
    from elevenlabs.client import ElevenLabs
    from elevenlabs.conversational_ai.conversation import (
        AsyncAudioInterface,
        AsyncConversation,
        ClientTools,
        ConversationInitiationData,
        DisconnectionDetails,
    )

__all__ = [
    "AsyncAudioInterface",
    "ClientTools",
    "Conversation",
    "ConversationInitiationData",
    "DisconnectionDetails",
    "ElevenLabs",
    "NullAudioInterface",
]

_SAMPLE_RATE = 16_000  # the agent's default input: PCM16 mono at 16 kHz


class NullAudioInterface(AsyncAudioInterface):
    """No microphone, no speaker. :meth:`silence` feeds the agent a chunk of silence, so
    a voice-mode conversation is not ended for want of input."""

    def __init__(self) -> None:
        self._input: Callable[[bytes], Awaitable[None]] | None = None

    async def start(self, input_callback: Callable[[bytes], Awaitable[None]]) -> None:
        self._input = input_callback

    async def stop(self) -> None:
        self._input = None

    async def output(self, audio: bytes) -> None:
        pass

    async def interrupt(self) -> None:
        pass

    async def silence(self, seconds: float = 0.25) -> None:
        if self._input is not None:
            await self._input(b"\x00\x00" * int(_SAMPLE_RATE * seconds))


class Conversation(AsyncConversation):
    """``AsyncConversation`` that says when the agent is ready (its
    ``conversation_initiation_metadata`` arrived), so nothing is sent before."""

    def __init__(
        self,
        *args: Any,
        on_message: Callable[[dict[str, Any]], Awaitable[None]] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.ready = asyncio.Event()
        #: Sees every server message before the SDK handles it: the SDK has no callback
        #: for ``interruption`` or ``tentative_user_transcript`` (ELEVENLABS.md, 4).
        self.on_message = on_message

    async def _handle_message(self, message: Any, ws: Any) -> None:
        if self.on_message is not None and isinstance(message, dict):
            await self.on_message(message)
        await super()._handle_message(message, ws)  # type: ignore[no-untyped-call]
        if isinstance(message, dict) and message.get("type") == "conversation_initiation_metadata":
            self.ready.set()

    @property
    def conversation_id(self) -> str | None:
        value = self._conversation_id
        return str(value) if value is not None else None
