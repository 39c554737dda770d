"""The pieces every operation of the OpenAPI document is made of: the one error shape,
the session id parameter, a JSON answer, an operation with its error answers."""

from __future__ import annotations

from typing import Any

from companion_ws.endpoints.openapi_schemas import REASONS

__all__ = ["ERROR", "SID", "errors", "json_answer", "op"]

ERROR = {"$ref": "#/components/schemas/Error"}
SID = {"name": "session_id", "in": "path", "required": True, "schema": {"type": "string"}}
_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]


def json_answer(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def errors(*statuses: int) -> dict[str, Any]:
    """The error answers an operation documents; each has the one error shape."""
    answers = {str(s): json_answer(ERROR, REASONS[s]) for s in statuses}
    answers["default"] = json_answer(ERROR, "any other error, in the same shape")
    return answers


def op(summary: str, ok: dict[str, Any], *statuses: int, **extra: Any) -> dict[str, Any]:
    return {
        "summary": summary,
        "security": _BEARER,
        "responses": {**ok, **errors(*statuses)},
        **extra,
    }
