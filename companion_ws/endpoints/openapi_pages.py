"""The OpenAPI path items of the ElevenLabs routes and the pages (``/``, ``/join``,
``/admin``), apart so that the main document stays one screen per route family."""

from __future__ import annotations

from typing import Any

from companion_ws.endpoints.admin import STATS_SCHEMA
from companion_ws.endpoints.openapi_ops import SID, errors, json_answer, op
from companion_ws.endpoints.openapi_schemas import CONVERSATION

__all__ = ["ELEVENLABS_AND_PAGES"]

ELEVENLABS_AND_PAGES: dict[str, Any] = {
    "/sessions/{session_id}/elevenlabs/conversation": {
        "parameters": [SID],
        "post": op(
            "a signed ElevenLabs conversation for the page to talk in (owner, admin); "
            "503 not_configured without COMPANION_ELEVENLABS_AGENT_ID and "
            "COMPANION_ELEVENLABS_API_KEY",
            {"200": json_answer(CONVERSATION, "the signed URL and what starts it")},
            401,
            403,
            404,
            410,
            502,
            503,
        ),
    },
    "/elevenlabs/tools/{tool_name}": {
        "parameters": [
            {
                "name": "tool_name",
                "in": "path",
                "required": True,
                "schema": {"type": "string"},
            }
        ],
        "post": {
            "summary": "an ElevenLabs server tool; session_id is the capability",
            "responses": {
                "200": json_answer({}, "the tool's result"),
                **errors(400, 401, 404, 409, 410, 422),
            },
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
        },
    },
    "/elevenlabs/post-call": {
        "post": {
            "summary": "the ElevenLabs post-call webhook (HMAC-signed)",
            "responses": {
                "200": json_answer({"type": "object"}, "stored, or why not"),
                **errors(400, 401, 404),
            },
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            },
        },
    },
    "/": {
        "get": {
            "summary": "the companion page",
            "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
        }
    },
    "/join": {
        "get": {
            "summary": "the page a join link opens",
            "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
        }
    },
    "/admin": {
        "get": {
            "summary": "the operator's page (its data needs an admin token)",
            "responses": {"200": {"description": "HTML", "content": {"text/html": {}}}},
        }
    },
    "/admin/stats": {
        "get": op(
            "this process's counters since it started, for /admin (admin)",
            {"200": json_answer(STATS_SCHEMA, "totals")},
            401,
            403,
        )
    },
}
