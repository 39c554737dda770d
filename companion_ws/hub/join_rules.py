"""docs/protocol.md section 1's join rules, as a pure function: who asks, for which session,
and what that session is now, in; where the connect lands, out. No I/O: the caller
reads the session's head (after ending it if its TTL has passed) and acts on the plan.

==========================================  ===========================================
the connect                                 lands in
==========================================  ===========================================
no ``session_id`` (and no scoped token)     a new session
a live session it may open                  that session, with its role (section 11)
a scoped token (reconnect, device,          refused: ``session_ended``
capability) whose session is gone
a session that ended, expired or never      a new session, with ``requested`` and the
existed                                     ``reason`` (``not_found`` for another
                                            user's, never telling whose it was)
the caller's own expired session            a new session carrying it on, when it had
                                            an unfinished task (section 13)
==========================================  ===========================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from companion_ws.auth import policy
from companion_ws.auth.policy import Role
from companion_ws.auth.tokens import Principal
from companion_ws.protocol.errors import SessionEnded

__all__ = ["Create", "Head", "Join", "plan"]


class Head(Protocol):
    """What the rules read of a session (``SessionHead``)."""

    @property
    def id(self) -> str: ...
    @property
    def owner_id(self) -> str: ...
    @property
    def ended_at(self) -> int | None: ...
    @property
    def end_reason(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class Join:
    """Join the live session, with this role."""

    role: Role


@dataclass(frozen=True, slots=True)
class Create:
    """A new session instead. ``reason`` says why the requested one could not be
    joined (None when none was asked for); ``carry_on``: the requested session is the
    caller's own and expired, and carries on in the new one if it had an unfinished
    task."""

    reason: str | None = None
    carry_on: bool = False


def plan(
    principal: Principal, requested: str | None, head: Head | None, client: str
) -> Join | Create:
    """Where a connect of ``principal`` asking for ``requested`` lands, given the
    session's ``head`` (None when it does not exist); :class:`SessionEnded` for a
    token scoped to a session that is gone."""
    if requested is None:
        return Create()
    if head is not None and head.ended_at is None:
        return Join(policy.socket_role(principal, head.id, head.owner_id, client))
    if principal.session_scope is not None:
        raise SessionEnded("this session has ended")
    if head is None or not policy.may_open(principal, head.owner_id):
        return Create(reason="not_found")  # never tell a stranger it existed
    reason = head.end_reason or "expired"
    own_expired = head.owner_id == principal.sub and head.end_reason == "expired"
    return Create(reason=reason, carry_on=own_expired)
