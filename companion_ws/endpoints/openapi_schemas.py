"""The schemas the OpenAPI document (:mod:`companion_ws.endpoints.openapi`) answers with."""

from __future__ import annotations

from typing import Any

__all__ = ["CONVERSATION", "DEVICE", "HISTORY", "MESSAGES", "REASONS", "SESSION", "STATE"]

REASONS: dict[int, str] = {
    400: "bad input (invalid_message)",
    401: "no valid credential (unauthorized)",
    403: "the credential's role may not do this (forbidden)",
    404: "no such session, device or route (not_found)",
    405: "method_not_allowed",
    409: "version_conflict or session_mismatch",
    410: "the session has ended (session_ended)",
    413: "the body is too large (payload_too_large, state_too_large)",
    422: "the tool failed (tool_failed)",
    429: "rate_limited",
    500: "internal (retryable)",
    502: "ElevenLabs refused or did not answer (upstream_failed)",
    503: "not ready, or a feature the hub was not set up for (not_configured)",
}

SESSION: dict[str, Any] = {
    "type": "object",
    "required": ["session_id", "owner_id", "created_at", "active", "connections", "seq"],
    "properties": {
        "session_id": {"type": "string"},
        "owner_id": {"type": "string"},
        "created_at": {"type": "integer"},
        "last_activity_at": {"type": "integer"},
        "expires_at": {"type": "integer"},
        "ended_at": {"type": ["integer", "null"]},
        "end_reason": {"type": ["string", "null"]},
        "active": {"type": "boolean"},
        "connections": {"type": "integer"},
        "seq": {"type": "integer"},
        "state_version": {"type": "integer"},
        "restored_from": {"type": ["string", "null"]},
        "state": {"type": "object"},
        "clients": {"type": "array", "items": {"type": "object"}},
    },
}
STATE: dict[str, Any] = {
    "type": "object",
    "required": ["state", "version"],
    "properties": {"state": {"type": "object"}, "version": {"type": "integer"}},
}
HISTORY: dict[str, Any] = {
    "type": "object",
    "required": ["session_id", "events", "after_seq", "next_after_seq", "latest_seq", "has_more"],
    "properties": {
        "session_id": {"type": "string"},
        "events": {"type": "array", "items": {"type": "object"}},
        "after_seq": {"type": "integer"},
        "next_after_seq": {"type": "integer"},
        "latest_seq": {"type": "integer"},
        "epoch": {"type": "string"},
        "has_more": {"type": "boolean"},
    },
}
MESSAGES: dict[str, Any] = {
    "type": "object",
    "required": ["session_id", "messages", "has_more"],
    "properties": {
        "session_id": {"type": "string"},
        "messages": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["message_id", "role", "text", "final", "seq", "timestamp"],
                "properties": {
                    "message_id": {"type": "string"},
                    "role": {"enum": ["user", "agent"]},
                    "text": {"type": "string"},
                    "final": {"type": "boolean"},
                    "seq": {"type": "integer"},
                    "timestamp": {"type": ["integer", "null"]},
                },
            },
        },
        "has_more": {"type": "boolean"},
    },
}
DEVICE: dict[str, Any] = {
    "type": "object",
    "required": ["device_id", "role", "joined_at", "expires_at", "connected", "revoked"],
    "properties": {
        "device_id": {"type": "string"},
        "role": {"enum": ["companion", "observer"]},
        "joined_at": {"type": "integer"},
        "expires_at": {"type": "integer"},
        "connected": {"type": "boolean"},
        "revoked": {"type": "boolean"},
    },
}

#: ``POST /sessions/{id}/elevenlabs/conversation`` (docs/protocol.md section 14).
CONVERSATION: dict[str, Any] = {
    "type": "object",
    "required": ["session_id", "agent_id", "signed_url", "dynamic_variables", "tools"],
    "properties": {
        "session_id": {"type": "string"},
        "agent_id": {"type": "string"},
        "signed_url": {"type": "string", "description": "wss://… to open with the official client"},
        "dynamic_variables": {
            "type": "object",
            "required": ["session_id"],
            "properties": {
                "session_id": {"type": "string", "description": "the session's agent capability"}
            },
        },
        "capability_expires_at": {"type": "integer"},
        "tools": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["name", "description", "response_timeout_secs"],
                "properties": {
                    "name": {"type": "string"},
                    "description": {"type": "string"},
                    "response_timeout_secs": {"type": "integer"},
                },
            },
        },
    },
}
