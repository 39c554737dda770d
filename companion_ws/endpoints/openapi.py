"""``GET /openapi.json``: the HTTP API as an OpenAPI 3.1 document. A test holds it to the
app's routes (every route documented, nothing documented that is not served) and a
schemathesis run fuzzes every operation against it (no 500, every answer as written).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from companion_ws import __version__
from companion_ws.endpoints.admin import STATS_SCHEMA
from companion_ws.endpoints.common import JSON, MAX_INT
from companion_ws.endpoints.openapi_agui import AG_UI
from companion_ws.endpoints.openapi_schemas import (
    CONVERSATION,
    DEVICE,
    HISTORY,
    MESSAGES,
    REASONS,
    SESSION,
    STATE,
)

__all__ = ["document", "routes"]

_ERROR = {"$ref": "#/components/schemas/Error"}
_SID = {"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}}
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*statuses: int) -> dict[str, Any]:
    """The error answers an operation documents; each has the one error shape."""
    answers = {str(s): _json(_ERROR, REASONS[s]) for s in statuses}
    answers["default"] = _json(_ERROR, "any other error, in the same shape")
    return answers


def _op(summary: str, ok: dict[str, Any], *errors: int, **extra: Any) -> dict[str, Any]:
    return {
        "summary": summary,
        "security": _BEARER,
        "responses": {**ok, **_errors(*errors)},
        **extra,
    }


def document() -> dict[str, Any]:
    """The OpenAPI document of the HTTP API."""
    int_query = {"type": "integer", "minimum": 0, "maximum": MAX_INT}
    #: A page after a seq (history, messages): ``after_seq`` and ``limit`` (1-1000).
    after_seq_page = [
        {"name": "after_seq", "in": "query", "schema": int_query},
        {
            "name": "limit",
            "in": "query",
            "schema": {"type": "integer", "minimum": 1, "maximum": 1000},
        },
    ]
    return {
        "openapi": "3.1.0",
        "info": {"title": "companion_ws", "version": __version__},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {
                        "error": {
                            "type": "object",
                            "required": ["code", "message"],
                            "properties": {
                                "code": {"type": "string"},
                                "message": {"type": "string"},
                                "retryable": {"type": "boolean"},
                            },
                        }
                    },
                }
            },
        },
        "paths": {
            "/healthz": {
                "get": {
                    "summary": "the process is alive",
                    "responses": {"200": _json({"type": "object"}, "alive")},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "the database, schema, broker (and bus) are usable",
                    "responses": {
                        "200": _json({"type": "object"}, "ready"),
                        "503": _json({"type": "object"}, "not ready, and why"),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus text format",
                    "responses": {"200": {"description": "metrics", "content": {"text/plain": {}}}},
                }
            },
            "/openapi.json": {
                "get": {
                    "summary": "this document",
                    "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")},
                }
            },
            "/sessions": {
                "post": _op(
                    "create a session owned by the caller; with restore_from, one that"
                    " carries on the caller's ended or expired session",
                    {"201": _json(SESSION, "created")},
                    400,
                    401,
                    403,
                    404,
                    409,
                    requestBody={
                        "required": False,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "restore_from": {
                                            "type": "string",
                                            "pattern": "^[A-Za-z0-9._:-]{1,64}$",
                                        }
                                    },
                                }
                            }
                        },
                    },
                ),
                "get": _op(
                    "list the caller's own sessions (an admin: everyone's)",
                    {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["sessions", "next_cursor"],
                                "properties": {
                                    "sessions": {"type": "array", "items": SESSION},
                                    "next_cursor": {"type": ["string", "null"]},
                                },
                            },
                            "a page",
                        )
                    },
                    400,
                    401,
                    403,
                    parameters=[
                        {
                            "name": "limit",
                            "in": "query",
                            "schema": {"type": "integer", "minimum": 1, "maximum": 500},
                        },
                        {"name": "cursor", "in": "query", "schema": {"type": "string"}},
                        {"name": "owner", "in": "query", "schema": {"type": "string"}},
                        {"name": "active", "in": "query", "schema": {"enum": ["true", "false"]}},
                    ],
                ),
            },
            "/sessions/{session_id}": {
                "parameters": [_SID],
                "get": _op(
                    "one session with its state and presence",
                    {"200": _json(SESSION, "the session")},
                    401,
                    403,
                    404,
                ),
                "delete": _op(
                    "end the session (owner, admin)",
                    {
                        "200": _json(
                            {"type": "object", "required": ["session_id", "ended"]}, "ended"
                        )
                    },
                    401,
                    403,
                    404,
                ),
            },
            "/sessions/{session_id}/state": {
                "parameters": [_SID],
                "get": _op(
                    "the state and its version", {"200": _json(STATE, "the state")}, 401, 403, 404
                ),
                "patch": _op(
                    "merge-patch the state (If-Match: version)",
                    {"200": _json(STATE, "the new state")},
                    400,
                    401,
                    403,
                    404,
                    409,
                    410,
                    413,
                    parameters=[
                        {
                            "name": "If-Match",
                            "in": "header",
                            "schema": {"type": "string", "pattern": '^(W/)?"?[0-9]{1,18}"?$'},
                        }
                    ],
                    requestBody={
                        "required": True,
                        "content": {"application/json": {"schema": {"type": "object"}}},
                    },
                ),
            },
            "/sessions/{session_id}/events": {
                "parameters": [_SID],
                "post": _op(
                    "publish a contextual_update (owner, agent, service, admin)",
                    {
                        "201": _json(
                            {
                                "type": "object",
                                "required": ["session_id", "seq", "epoch"],
                                "properties": {
                                    "seq": {"type": "integer"},
                                    "epoch": {"type": "string"},
                                },
                            },
                            "durable and broadcast",
                        )
                    },
                    400,
                    401,
                    403,
                    404,
                    410,
                    413,
                    requestBody={
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["text"],
                                    "properties": {
                                        "text": {"type": "string", "minLength": 1},
                                        "data": {},
                                    },
                                    "additionalProperties": False,
                                }
                            }
                        },
                    },
                ),
            },
            "/sessions/{session_id}/history": {
                "parameters": [_SID],
                "get": _op(
                    "events after a seq",
                    {"200": _json(HISTORY, "a page of events")},
                    400,
                    401,
                    403,
                    404,
                    parameters=after_seq_page,
                ),
            },
            "/sessions/{session_id}/messages": {
                "parameters": [_SID],
                "get": _op(
                    "the conversation, corrections applied, in order of first appearance",
                    {"200": _json(MESSAGES, "messages first said after after_seq")},
                    400,
                    401,
                    403,
                    404,
                    parameters=after_seq_page,
                ),
            },
            "/sessions/{session_id}/ag-ui": AG_UI,
            "/sessions/{session_id}/join-token": {
                "parameters": [_SID],
                "post": _op(
                    "a one-time join code for a device (owner, admin)",
                    {
                        "201": _json(
                            {
                                "type": "object",
                                "required": ["join_token", "join_url", "expires_at", "role"],
                            },
                            "issued",
                        )
                    },
                    400,
                    401,
                    403,
                    404,
                    410,
                    requestBody={
                        "required": False,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {"role": {"enum": ["companion", "observer"]}},
                                    "additionalProperties": False,
                                }
                            }
                        },
                    },
                ),
            },
            "/sessions/{session_id}/qr.svg": {
                "parameters": [_SID],
                "get": _op(
                    "a fresh join link as a QR code (owner, admin)",
                    {"200": {"description": "SVG", "content": {"image/svg+xml": {}}}},
                    401,
                    403,
                    404,
                    410,
                ),
            },
            "/sessions/{session_id}/devices": {
                "parameters": [_SID],
                "get": _op(
                    "the devices joined by code (owner, admin)",
                    {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["devices"],
                                "properties": {"devices": {"type": "array", "items": DEVICE}},
                            },
                            "devices",
                        )
                    },
                    401,
                    403,
                    404,
                ),
            },
            "/sessions/{session_id}/devices/{device_id}": {
                "parameters": [
                    _SID,
                    {
                        "name": "device_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                ],
                "delete": _op(
                    "revoke a device (owner, admin)",
                    {"200": _json({"type": "object", "required": ["revoked"]}, "revoked")},
                    401,
                    403,
                    404,
                ),
            },
            "/sessions/{session_id}/elevenlabs/conversation": {
                "parameters": [_SID],
                "post": _op(
                    "a signed ElevenLabs conversation for the page to talk in (owner, admin); "
                    "503 not_configured without COMPANION_ELEVENLABS_AGENT_ID and "
                    "COMPANION_ELEVENLABS_API_KEY",
                    {"200": _json(CONVERSATION, "the signed URL and what starts it")},
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
                        "200": _json({}, "the tool's result"),
                        **_errors(400, 401, 404, 409, 410, 422),
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
                        "200": _json({"type": "object"}, "stored, or why not"),
                        **_errors(400, 401, 404),
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
                "get": _op(
                    "this process's counters since it started, for /admin (admin)",
                    {"200": _json(STATS_SCHEMA, "totals")},
                    401,
                    403,
                )
            },
        },
    }


async def openapi(request: Request) -> Response:
    return JSON(document())


routes = [Route("/openapi.json", openapi)]
