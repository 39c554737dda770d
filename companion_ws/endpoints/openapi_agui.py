"""The OpenAPI path item of ``GET /sessions/{id}/ag-ui`` (:mod:`companion_ws.endpoints.agui`),
apart so that the main document stays one screen per route family."""

from __future__ import annotations

from typing import Any

from companion_ws.endpoints.common import MAX_INT
from companion_ws.endpoints.openapi_schemas import REASONS

__all__ = ["AG_UI"]

_ERROR = {"$ref": "#/components/schemas/Error"}


def _error(status: int) -> dict[str, Any]:
    return {"description": REASONS[status], "content": {"application/json": {"schema": _ERROR}}}


AG_UI: dict[str, Any] = {
    "parameters": [
        {"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}}
    ],
    "get": {
        "summary": "the session as AG-UI protocol events (anyone who may read it)",
        "description": (
            "A text/event-stream: RUN_STARTED, STATE_SNAPSHOT, MESSAGES_SNAPSHOT, then the "
            "session live (STATE_DELTA, TEXT_MESSAGE_*, TOOL_CALL_*, STEP_*, CUSTOM) until "
            "RUN_FINISHED when it ends. Each event is one `data:` line; `id:` is the seq of "
            "the frame it comes from. Last-Event-ID (or after_seq) resumes after that seq."
        ),
        "security": [{"bearer": []}],
        "parameters": [
            {
                "name": "after_seq",
                "in": "query",
                "schema": {"type": "integer", "minimum": 0, "maximum": MAX_INT},
            },
            {
                "name": "token",
                "in": "query",
                "description": "the credential, for clients that cannot send headers",
                "schema": {"type": "string"},
            },
            {
                "name": "Last-Event-ID",
                "in": "header",
                "schema": {"type": "string", "pattern": "^([0-9]{1,18})?$"},
            },
        ],
        "responses": {
            "200": {"description": "AG-UI events", "content": {"text/event-stream": {}}},
            **{str(status): _error(status) for status in (400, 401, 403, 404)},
            "default": {
                "description": "any other error, in the same shape",
                "content": {"application/json": {"schema": _ERROR}},
            },
        },
    },
}
