"""What the ElevenLabs Conversational AI platform sends a client, as the real SDK reads
it (ELEVENLABS.md, server-to-client events). [pure] Used by the demo's stand-in and by
the tests' local platform."""

from __future__ import annotations

from typing import Any

__all__ = [
    "agent_response",
    "agent_response_correction",
    "client_tool_call",
    "interruption",
    "user_transcript",
]

Frame = dict[str, Any]


def user_transcript(text: str, event_id: int) -> Frame:
    return {
        "type": "user_transcript",
        "user_transcription_event": {"user_transcript": text, "event_id": event_id},
    }


def agent_response(text: str, event_id: int) -> Frame:
    return {
        "type": "agent_response",
        "agent_response_event": {"agent_response": text, "event_id": event_id},
    }


def interruption(event_id: int) -> Frame:
    return {"type": "interruption", "interruption_event": {"event_id": event_id}}


def agent_response_correction(original: str, corrected: str, event_id: int) -> Frame:
    return {
        "type": "agent_response_correction",
        "agent_response_correction_event": {
            "original_agent_response": original,
            "corrected_agent_response": corrected,
            "event_id": event_id,
        },
    }


def client_tool_call(name: str, call_id: str, parameters: dict[str, Any], event_id: int) -> Frame:
    return {
        "type": "client_tool_call",
        "client_tool_call": {
            "tool_name": name,
            "tool_call_id": call_id,
            "parameters": parameters,
            "event_id": event_id,
        },
    }
