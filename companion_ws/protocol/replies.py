"""The ``error`` frame that answers a failed request (or tells a socket why it is being
closed), encoded: one shape for the router, the token lifetimes and revocation."""

from __future__ import annotations

import msgspec

from companion_ws.protocol import frames as f
from companion_ws.protocol.codec import encode
from companion_ws.protocol.errors import CompanionError

__all__ = ["error_frame"]


def error_frame(session_id: str, error: CompanionError, request_id: str | None) -> str:
    """The ``error`` frame that answers ``error``, encoded."""
    fields = {"type": "error", **error.payload()}
    if session_id:  # errors before a join name no session
        fields["session_id"] = session_id
    frame = msgspec.convert(fields, f.Error)
    if request_id is not None:
        frame = msgspec.structs.replace(frame, requestId=request_id)
    return encode(frame).decode()
