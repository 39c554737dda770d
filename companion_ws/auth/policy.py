"""Who may do what to which session. Pure functions of a principal and a session's owner."""

from __future__ import annotations

from companion_ws.auth.tokens import Principal
from companion_ws.errors import Forbidden


def check_scope(principal: Principal, session_id: str | None) -> None:
    """A token scoped to one session (join/reconnect tokens) admits only that session."""
    if principal.session_scope is not None and principal.session_scope != session_id:
        raise Forbidden("this token is only good for another session")


def can_access(principal: Principal, session_id: str, owner_id: str) -> bool:
    """Read, write and join: the owner (within the token's scope) or an admin."""
    if principal.session_scope is not None and principal.session_scope != session_id:
        return False
    return principal.is_admin or principal.sub == owner_id


def require_access(principal: Principal, session_id: str, owner_id: str) -> None:
    if not can_access(principal, session_id, owner_id):
        raise Forbidden("this session belongs to another user")


def can_publish(principal: Principal, session_id: str, owner_id: str) -> bool:
    """Backends with the service role may publish events into any session."""
    return principal.is_service or can_access(principal, session_id, owner_id)


def require_admin(principal: Principal) -> None:
    if not principal.is_admin:
        raise Forbidden("admin only")


def can_create_sessions(principal: Principal) -> bool:
    """Scoped tokens (join/reconnect) open one session and never create others."""
    return principal.session_scope is None


def require_can_end(principal: Principal, session_id: str, owner_id: str) -> None:
    """Ending a session: its owner or an admin."""
    if not can_access(principal, session_id, owner_id):
        raise Forbidden("only the session's owner can end it")
