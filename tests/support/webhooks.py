"""What ElevenLabs sends the hub, for the webhook tests: the capability a conversation
carries as its ``session_id``, and a post-call body naming it."""

from __future__ import annotations

import json
import time
import uuid

from tests.support.hub import tokens


def capability(sid: str) -> str:
    """The capability the hub signs for a session: the ElevenLabs ``session_id``."""
    return tokens.mint_capability("owner", sid, 3600)


def post_call_body(sid: str, conversation_id: str | None = None) -> bytes:
    payload = {
        "type": "post_call_transcription",
        "event_timestamp": int(time.time()),
        "data": {
            "agent_id": "agent_test",
            "conversation_id": conversation_id or f"conv_{uuid.uuid4().hex[:10]}",
            "status": "done",
            "transcript": [
                {"role": "agent", "message": "Hi! Where are we shipping?"},
                {"role": "user", "message": "A 5 lb box to New York."},
            ],
            "metadata": {"call_duration_secs": 42, "termination_reason": "end_call tool"},
            "analysis": {
                "transcript_summary": "The user got quotes and chose FedEx Ground.",
                "call_successful": "success",
            },
            "conversation_initiation_client_data": {
                "dynamic_variables": {
                    "session_id": capability(sid),
                    "system__agent_id": "agent_test",
                }
            },
        },
    }
    return json.dumps(payload).encode()
