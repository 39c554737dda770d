"""The error tree (companion_ws.protocol.errors) as gRPC status codes (docs/protocol.md
section 15)."""

from __future__ import annotations

import grpc

from companion_ws.protocol import errors as e

__all__ = ["status_of"]

_TABLE: tuple[tuple[type[e.CompanionError], grpc.StatusCode], ...] = (
    (e.Unauthorized, grpc.StatusCode.UNAUTHENTICATED),
    (e.Forbidden, grpc.StatusCode.PERMISSION_DENIED),
    (e.NotFound, grpc.StatusCode.NOT_FOUND),
    (e.SessionEnded, grpc.StatusCode.NOT_FOUND),
    (e.VersionConflict, grpc.StatusCode.ABORTED),
    (e.BadRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (e.StateTooLarge, grpc.StatusCode.INVALID_ARGUMENT),
    (e.PayloadTooLarge, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (e.SessionMismatch, grpc.StatusCode.INVALID_ARGUMENT),
    (e.ToolNotFound, grpc.StatusCode.NOT_FOUND),
    (e.TooManyStreams, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (e.RateLimited, grpc.StatusCode.UNAVAILABLE),
    (e.Internal, grpc.StatusCode.UNAVAILABLE),
)


def status_of(error: e.CompanionError) -> grpc.StatusCode:
    for cls, code in _TABLE:
        if isinstance(error, cls):
            return code
    return grpc.StatusCode.INTERNAL
