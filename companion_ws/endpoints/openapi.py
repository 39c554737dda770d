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
from companion_ws.endpoints.common import JSON, MAX_INT
from companion_ws.endpoints.openapi_agui import AG_UI
from companion_ws.endpoints.openapi_ops import SID, json_answer, op
from companion_ws.endpoints.openapi_pages import ELEVENLABS_AND_PAGES
from companion_ws.endpoints.openapi_schemas import (
    DEVICE,
    HISTORY,
    MESSAGES,
    SESSION,
    STATE,
)

__all__ = ["document", "routes"]


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
                    "responses": {"200": json_answer({"type": "object"}, "alive")},
                }
            },
            "/readyz": {
                "get": {
                    "summary": "the database, schema, broker (and bus) are usable",
                    "responses": {
                        "200": json_answer({"type": "object"}, "ready"),
                        "503": json_answer({"type": "object"}, "not ready, and why"),
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
                    "responses": {"200": json_answer({"type": "object"}, "OpenAPI 3.1")},
                }
            },
            "/sessions": {
                "post": op(
                    "create a session owned by the caller; with restore_from, one that"
                    " carries on the caller's ended or expired session",
                    {"201": json_answer(SESSION, "created")},
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
                "get": op(
                    "list the caller's own sessions (an admin: everyone's)",
                    {
                        "200": json_answer(
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
                "parameters": [SID],
                "get": op(
                    "one session with its state and presence",
                    {"200": json_answer(SESSION, "the session")},
                    401,
                    403,
                    404,
                ),
                "delete": op(
                    "end the session (owner, admin)",
                    {
                        "200": json_answer(
                            {"type": "object", "required": ["session_id", "ended"]}, "ended"
                        )
                    },
                    401,
                    403,
                    404,
                ),
            },
            "/sessions/{session_id}/state": {
                "parameters": [SID],
                "get": op(
                    "the state and its version",
                    {"200": json_answer(STATE, "the state")},
                    401,
                    403,
                    404,
                ),
                "patch": op(
                    "merge-patch the state (If-Match: version)",
                    {"200": json_answer(STATE, "the new state")},
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
                "parameters": [SID],
                "post": op(
                    "publish a contextual_update (owner, agent, service, admin)",
                    {
                        "201": json_answer(
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
                "parameters": [SID],
                "get": op(
                    "events after a seq",
                    {"200": json_answer(HISTORY, "a page of events")},
                    400,
                    401,
                    403,
                    404,
                    parameters=after_seq_page,
                ),
            },
            "/sessions/{session_id}/messages": {
                "parameters": [SID],
                "get": op(
                    "the conversation, corrections applied, in order of first appearance",
                    {"200": json_answer(MESSAGES, "messages first said after after_seq")},
                    400,
                    401,
                    403,
                    404,
                    parameters=after_seq_page,
                ),
            },
            "/sessions/{session_id}/ag-ui": AG_UI,
            "/sessions/{session_id}/join-token": {
                "parameters": [SID],
                "post": op(
                    "a one-time join code for a device (owner, admin)",
                    {
                        "201": json_answer(
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
                "parameters": [SID],
                "get": op(
                    "a fresh join link as a QR code (owner, admin)",
                    {"200": {"description": "SVG", "content": {"image/svg+xml": {}}}},
                    401,
                    403,
                    404,
                    410,
                ),
            },
            "/sessions/{session_id}/devices": {
                "parameters": [SID],
                "get": op(
                    "the devices joined by code (owner, admin)",
                    {
                        "200": json_answer(
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
                    SID,
                    {
                        "name": "device_id",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string"},
                    },
                ],
                "delete": op(
                    "revoke a device (owner, admin)",
                    {"200": json_answer({"type": "object", "required": ["revoked"]}, "revoked")},
                    401,
                    403,
                    404,
                ),
            },
            **ELEVENLABS_AND_PAGES,
        },
    }


async def openapi(request: Request) -> Response:
    return JSON(document())


routes = [Route("/openapi.json", openapi)]
