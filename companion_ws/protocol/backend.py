"""What a backend may publish into a session (docs/protocol.md section 15): a type and its
fields in, a typed broadcast frame out, or :class:`~companion_ws.protocol.errors.BadRequest`
saying what is wrong. Shared by gRPC ``Publish`` and the bus's inbound messages. [pure]
"""

from __future__ import annotations

from typing import Any

import msgspec

from companion_ws.protocol import frames as f
from companion_ws.protocol.errors import BadRequest

__all__ = ["PUBLISHABLE", "backend_frame"]

#: The types a backend publishes, and the fields of each it may set.
PUBLISHABLE: dict[str, tuple[type[f.BroadcastFrame], tuple[str, ...]]] = {
    "contextual_update": (f.ContextualUpdate, ("text", "data")),
    "transcript": (f.Transcript, ("role", "message_id", "text", "final")),
    "step": (f.Step, ("step_id", "name", "status", "detail")),
    "agent_state": (f.AgentState, ("state",)),
}


def backend_frame(
    session_id: str,
    kind: Any,
    fields: Any,
    *,
    request_id: str | None = None,
    sender: str,
) -> f.BroadcastFrame:
    """The broadcast frame for ``kind`` with ``fields`` (other keys are ignored)."""
    if not isinstance(kind, str) or kind not in PUBLISHABLE:
        raise BadRequest(f"type must be one of {', '.join(sorted(PUBLISHABLE))}, not {kind!r}")
    if not isinstance(fields, dict):
        raise BadRequest("the fields must be a JSON object")
    if request_id is not None and (not isinstance(request_id, str) or len(request_id) > 128):
        raise BadRequest("correlation_id must be a string of at most 128 characters")
    cls, allowed = PUBLISHABLE[kind]
    body = {k: fields[k] for k in allowed if k in fields}
    body.update(session_id=session_id, sender=sender)
    if request_id:
        body["requestId"] = request_id
    try:
        frame: f.BroadcastFrame = msgspec.convert(body, type=cls)
    except msgspec.ValidationError as exc:
        raise BadRequest(f"bad {kind}: {exc}") from None
    if isinstance(frame, f.ContextualUpdate) and not frame.text:
        raise BadRequest("a contextual_update needs a non-empty `text`")
    return frame
