"""One error tree, one table: every error knows its wire code, close code and HTTP status.

    CompanionError                    code          close   http
    ├── BadRequest                    invalid_message  -     400
    │   ├── InvalidJSON               invalid_json     -     400
    │   ├── UnknownType               unknown_type     -     400
    │   └── BadConnectParams          invalid_message 4400   400
    ├── Unauthorized                  unauthorized    4401   401
    │   └── TokenExpired              token_expired   4401   401  (no refresh in time)
    ├── Forbidden                     forbidden       4403   403
    │   └── NotAllowed                forbidden        -     403  (a frame the role may not send)
    ├── NotFound                      not_found        -     404
    ├── SessionEnded                  session_ended   4410   410
    ├── VersionConflict               version_conflict -     409  (carries ``version``)
    ├── SessionMismatch               session_mismatch -     409
    ├── StateTooLarge                 state_too_large  -     413
    ├── PayloadTooLarge               payload_too_large -    413
    ├── RateLimited                   rate_limited     -     429
    ├── TooManyConnections            rate_limited    4429   429
    ├── TooManySessions               rate_limited    4429   429  (new sessions too fast)
    ├── TooManyStreams                too_many_streams -     429  (AG-UI and gRPC streams)
    ├── ToolNotFound                  tool_not_found   -     404
    ├── ToolFailed                    tool_failed      -     422
    ├── NotConfigured                 not_configured   -     503  (feature off)
    ├── UpstreamFailed                upstream_failed  -     502  (ElevenLabs said no)
    ├── Unavailable                   unavailable     1011   503  (retryable: no answer in time)
    └── Internal                      internal         -     500  (retryable)

An error with a close code ends the connection after its ``error`` frame; the others
answer the frame and the connection goes on.
"""

from __future__ import annotations

from typing import Any, ClassVar

from companion_ws.protocol.closecodes import Close


class CompanionError(Exception):
    code: ClassVar[str] = "internal"
    close_code: ClassVar[int | None] = None
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.message = message
        self.extra = extra

    def payload(self) -> dict[str, Any]:
        """The ``error`` frame's fields (and the HTTP error body's)."""
        return {"code": self.code, "message": self.message, **self.extra}


class BadRequest(CompanionError):
    code = "invalid_message"
    http_status = 400


class InvalidJSON(BadRequest):
    code = "invalid_json"


class UnknownType(BadRequest):
    code = "unknown_type"


class BadConnectParams(BadRequest):
    close_code = Close.BAD_REQUEST


class Unauthorized(CompanionError):
    code = "unauthorized"
    close_code = Close.UNAUTHORIZED
    http_status = 401


class TokenExpired(Unauthorized):
    """An open connection's credential expired and was not refreshed (section 12)."""

    code = "token_expired"


class Forbidden(CompanionError):
    code = "forbidden"
    close_code: ClassVar[int | None] = Close.FORBIDDEN
    http_status = 403


class NotAllowed(Forbidden):
    """A frame or request this role may not send: refused, the connection stays open."""

    close_code = None


class NotFound(CompanionError):
    code = "not_found"
    http_status = 404


class SessionEnded(CompanionError):
    code = "session_ended"
    close_code = Close.SESSION_ENDED
    http_status = 410


class VersionConflict(CompanionError):
    code = "version_conflict"
    http_status = 409


class StateRefused(CompanionError):
    """A state change the tool pack's rules refuse (a pick after the label is made);
    the message says why (docs/protocol.md section 10)."""

    code = "state_refused"
    http_status = 409


class SessionMismatch(CompanionError):
    code = "session_mismatch"
    http_status = 409


class SessionLive(CompanionError):
    """Restoring a session that has neither ended nor expired: connect to it."""

    code = "session_live"
    http_status = 409


class StateTooLarge(CompanionError):
    code = "state_too_large"
    http_status = 413


class PayloadTooLarge(CompanionError):
    """An HTTP body over ``COMPANION_MAX_BODY_BYTES`` (refused before it is read whole),
    or an event whose frame would be over ``COMPANION_MAX_EVENT_BYTES`` (any door)."""

    code = "payload_too_large"
    http_status = 413


class RateLimited(CompanionError):
    code = "rate_limited"
    http_status = 429


class TooManyConnections(RateLimited):
    close_code = Close.TOO_MANY


class TooManySessions(RateLimited):
    """One user creates sessions faster than ``COMPANION_SESSION_CREATE_RATE`` (HTTP
    429; a connect that would create one closes 4429)."""

    close_code = Close.TOO_MANY


class TooManyStreams(CompanionError):
    """One user already holds ``COMPANION_MAX_STREAMS_PER_USER`` AG-UI and gRPC streams
    (gRPC: ``RESOURCE_EXHAUSTED``)."""

    code = "too_many_streams"
    http_status = 429


class ToolNotFound(CompanionError):
    code = "tool_not_found"
    http_status = 404


class ToolFailed(CompanionError):
    code = "tool_failed"
    http_status = 422


class NotConfigured(CompanionError):
    """A feature the hub's settings leave off (e.g. talking from the page without
    ``COMPANION_ELEVENLABS_AGENT_ID`` and ``COMPANION_ELEVENLABS_API_KEY``)."""

    code = "not_configured"
    http_status = 503


class UpstreamFailed(CompanionError):
    """A service the hub calls for the client (ElevenLabs' signed-URL API) refused or
    did not answer; its message never carries a credential."""

    code = "upstream_failed"
    http_status = 502


class NoVoice(CompanionError):
    """An ``agent_control`` with nobody holding the voice floor, or a ``release_voice``
    from a connection that does not hold it (docs/protocol.md section 17)."""

    code = "no_voice"
    http_status = 409


class Unavailable(CompanionError):
    """A request the hub could not answer within ``COMPANION_REQUEST_TIMEOUT`` (the
    database or the broker stalled): it may still take effect. On a socket the
    connection is closed 1011 after it, so that no late answer follows; the client
    resumes and finds the request's effect, if any, in the history."""

    code = "unavailable"
    close_code = Close.INTERNAL
    http_status = 503

    def __init__(self, message: str, **extra: Any) -> None:
        super().__init__(message, retryable=True, **extra)


class Internal(CompanionError):
    code = "internal"
    http_status = 500

    def __init__(self, message: str = "internal error, retry", **extra: Any) -> None:
        super().__init__(message, retryable=True, **extra)
