"""What happened, one line each: a socket ``accepted``, ``refused`` or ``closed`` (logger
``companion_ws.ws``) and an HTTP request answered with an error (``companion_ws.http``).

A line reads ``event key=value ...``; its fields also ride on the record (``event`` and
``fields`` attributes) for ``--log-format json``. The fields are chosen, never copied
from the request: no token, no join code, no query string. (The redaction in
:mod:`companion_ws.logs` still runs over every line as a safety net.)
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from companion_ws.auth.tokens import Principal
    from companion_ws.hub.connection import Connection

__all__ = ["accepted", "closed", "enabled", "http_error", "refused", "scope_peer", "user_of"]

ws_log = logging.getLogger("companion_ws.ws")
http_log = logging.getLogger("companion_ws.http")

Fields = dict[str, str | int | float | bool | None]


def _value(value: str | int | float | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    if not text or any(c.isspace() or c in "\"'=\\" for c in text) or not text.isprintable():
        return json.dumps(text)
    return text


def enabled() -> bool:
    """Whether the connection lines are written (``--log-level info`` or lower): when
    not, the endpoint does not even gather their fields."""
    return ws_log.isEnabledFor(logging.INFO)


def emit(logger: logging.Logger, level: int, event: str, fields: Fields) -> None:
    if not logger.isEnabledFor(level):
        return
    kept = {k: v for k, v in fields.items() if v is not None}
    line = event + "".join(f" {k}={_value(v)}" for k, v in kept.items())
    logger.log(level, line, extra={"event": event, "fields": kept})


def user_of(principal: Principal | None) -> str | None:
    """The user a credential names: None for a join code (its ``sub`` is empty until
    the code is consumed, and the code itself is a secret)."""
    if principal is None or principal.is_join or not principal.sub:
        return None
    return principal.sub


def credential_of(principal: Principal | None) -> str | None:
    """The kind of credential (``user``, ``join``, ``device``, ``reconnect``...)."""
    if principal is None:
        return None
    return principal.token_type or "user"


def accepted(conn: Connection, peer: str | None, *, resumed: bool, via: str | None) -> None:
    """A socket joined its session. ``via``: where its token was (``subprotocol``,
    ``query`` or ``header``): ``query`` means a URL that proxies may have logged."""
    emit(
        ws_log,
        logging.INFO,
        "accepted",
        {
            "session": conn.session_id,
            "conn": conn.id,
            "user": conn.user_id,
            "role": str(conn.role),
            "client": conn.client,
            "device": conn.device_id,
            "credential": credential_of(conn.principal),
            "via": via,
            "resume": resumed or None,
            "peer": peer,
        },
    )


def refused(
    code: int,
    reason: str,
    *,
    error: str,
    principal: Principal | None,
    session: str | None,
    client: str | None,
    via: str | None,
    peer: str | None,
) -> None:
    """A socket refused before it joined: its close code and reason, and what is known
    of it. ``session`` is the one it asked for."""
    emit(
        ws_log,
        logging.INFO,
        "refused",
        {
            "code": code,
            "error": error,
            "reason": reason,
            "session": session,
            "user": user_of(principal),
            "credential": credential_of(principal),
            "client": client,
            "via": via,
            "peer": peer,
        },
    )


def closed(conn: Connection, code: int, reason: str, *, by: str, duration: float) -> None:
    """A joined socket's end: who closed it, how, after how long, with how many frames
    each way."""
    emit(
        ws_log,
        logging.INFO,
        "closed",
        {
            "session": conn.session_id,
            "conn": conn.id,
            "user": conn.user_id,
            "client": conn.client,
            "code": code,
            "reason": reason[:120] or None,
            "by": by,
            "duration_ms": round(duration * 1000),
            "frames_in": conn.frames_in,
            "frames_out": conn.frames_out,
        },
    )


def http_error(method: str, path: str, status: int, code: str) -> None:
    """An HTTP error answer. ``path`` is the path alone, never its query string."""
    emit(
        http_log,
        logging.WARNING if status >= 500 else logging.INFO,
        "http_error",
        {"status": status, "code": code, "method": method, "path": path},
    )


def scope_peer(scope: Any) -> str | None:
    client = scope.get("client") if isinstance(scope, dict) else None
    return f"{client[0]}:{client[1]}" if client else None
