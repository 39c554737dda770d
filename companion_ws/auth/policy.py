"""Who may do what to which session (docs/protocol.md section 11). Pure: a principal, the
session's owner and what the connection calls itself in; a role and its rights out.

One table, asked by every adapter (the socket, the HTTP API, the webhooks, the bridge):

    role       read  write  converse  end  invite  devices  talk  voice  steer
    owner       x     x       x        x     x       x       x     x      x
    agent       x     x       x                                    x
    companion   x     x                                      x     x      x
    observer    x
    service     x     x       x                                                (in any session)
    admin       x     x       x        x     x       x       x     x      x    (in any session)

*read*: the welcome, replays, state, history, presence, ping; *write*:
``contextual_update``, ``update_session_state``, ``client_tool_call``; *converse*: the
agent's frames of section 13; *end*: end the session; *invite*: mint join tokens;
*devices*: list and revoke joined devices; *talk*: start a voice conversation from the
page (a signed ElevenLabs URL, docs/protocol.md section 14), which spends the owner's
ElevenLabs account (a companion device the owner joined may: the voice follows the user
to it, section 17); *voice*: take and release the voice floor (section 17); *steer*:
``agent_control`` on the holder's conversation (interrupt, mute, unmute, end).

The credential fixes the role, and a credential the hub issued for one session caps
what it does off the socket (:data:`OFF_SOCKET`):

    credential               on /ws                    over HTTP and gRPC
    a user's own JWT          its wide role (or agent)  its wide role
    a user's reconnect token  its wide role (or agent)  read its session
    a joined device's token   its device role           read its session (a companion:
                                                        and talk, section 17)
    the agent capability      agent                     read its session (refused once
                                                        the session has ended)
"""

from __future__ import annotations

from enum import StrEnum

from companion_ws.auth.tokens import AGENT, DEVICE, RECONNECT, Principal
from companion_ws.protocol.errors import Forbidden, NotAllowed, SessionEnded

__all__ = [
    "HOLDER_GRANTS",
    "OFF_SOCKET",
    "PERMISSIONS",
    "Action",
    "Role",
    "allows",
    "can_create_sessions",
    "check_scope",
    "holder_may",
    "http_role",
    "may_open",
    "require",
    "require_admin",
    "require_http",
    "socket_role",
]


class Role(StrEnum):
    OWNER = "owner"
    AGENT = "agent"
    COMPANION = "companion"
    OBSERVER = "observer"
    SERVICE = "service"
    ADMIN = "admin"


class Action(StrEnum):
    READ = "read"
    WRITE = "write"
    CONVERSE = "converse"
    END = "end"
    INVITE = "invite"
    DEVICES = "devices"
    TALK = "talk"
    VOICE = "voice"
    STEER = "steer"


_ALL = frozenset(Action)
PERMISSIONS: dict[Role, frozenset[Action]] = {
    Role.OWNER: _ALL,
    Role.AGENT: frozenset({Action.READ, Action.WRITE, Action.CONVERSE, Action.VOICE}),
    Role.COMPANION: frozenset({Action.READ, Action.WRITE, Action.TALK, Action.VOICE, Action.STEER}),
    Role.OBSERVER: frozenset({Action.READ}),
    Role.SERVICE: frozenset({Action.READ, Action.WRITE, Action.CONVERSE}),
    Role.ADMIN: _ALL,
}

#: What a role may do besides, on the socket, while its connection holds the voice
#: floor (docs/protocol.md section 17): a companion holding the conversation publishes
#: it (the agent's frames of section 13), as the owner's page does.
HOLDER_GRANTS: dict[Role, frozenset[Action]] = {Role.COMPANION: frozenset({Action.CONVERSE})}

#: What a role may not do, in words, for the ``forbidden`` answer.
_DOING: dict[Action, str] = {
    Action.READ: "read this session",
    Action.WRITE: "change this session",
    Action.CONVERSE: "speak for the agent",
    Action.END: "end this session",
    Action.INVITE: "invite devices",
    Action.DEVICES: "manage devices",
    Action.TALK: "start a voice conversation",
    Action.VOICE: "take the voice conversation",
    Action.STEER: "steer the voice conversation",
}

#: The most a credential the hub issued for one session may do off the socket (the
#: HTTP API, the AG-UI stream, gRPC), whatever its role on the socket: read its session
#: (docs/protocol.md sections 11 and 12). A user's own token is not capped here.
OFF_SOCKET: dict[str, frozenset[Action]] = {
    DEVICE: frozenset({Action.READ, Action.TALK}),  # talk: a companion (section 17)
    RECONNECT: frozenset({Action.READ}),
    AGENT: frozenset({Action.READ}),
}
_CREDENTIAL: dict[str, str] = {
    DEVICE: "a joined device's token",
    RECONNECT: "a reconnect token",
    AGENT: "the agent capability",
}

#: Device roles a join token may carry.
DEVICE_ROLES = frozenset({Role.COMPANION, Role.OBSERVER})
AGENT_CLIENT = "agent"


def allows(role: Role, action: Action) -> bool:
    return action in PERMISSIONS[role]


def holder_may(role: Role, action: Action) -> bool:
    """Whether holding the voice floor would let ``role`` do ``action``."""
    return action in HOLDER_GRANTS.get(role, frozenset())


def require(role: Role, action: Action, *, holds_floor: bool = False) -> None:
    """:class:`Forbidden` unless ``role`` may do ``action`` (``holds_floor``: its
    connection holds the voice floor, :data:`HOLDER_GRANTS`)."""
    if holds_floor and action in HOLDER_GRANTS.get(role, frozenset()):
        return
    if action not in PERMISSIONS[role]:
        raise NotAllowed(f"a device with the {role.value} role may not {_DOING[action]}")


def check_scope(principal: Principal, session_id: str | None) -> None:
    """A token scoped to one session (device, reconnect) admits only that session."""
    if principal.session_scope is not None and principal.session_scope != session_id:
        raise Forbidden("this token is only good for another session")


def socket_role(principal: Principal, session_id: str, owner_id: str, client: str) -> Role:
    """The role of a connection to the session, from its credential alone; what it
    calls itself (``client``) matters only to ask for the narrower agent role.
    :class:`Forbidden` when the credential gives no access."""
    if principal.session_scope is not None and principal.session_scope != session_id:
        raise Forbidden("this token is only good for another session")
    if principal.device_role is not None:
        if client == AGENT_CLIENT:
            raise Forbidden("a joined device cannot connect as the agent")
        return Role(principal.device_role)
    if principal.is_capability:
        return Role.AGENT  # whatever the connection calls itself
    wide = _wide_role(principal, owner_id)
    if wide is None:
        raise Forbidden("this session belongs to another user")
    return Role.AGENT if client == AGENT_CLIENT else wide


def http_role(principal: Principal, session_id: str, owner_id: str) -> Role:
    """The role of an HTTP caller on the session. A device's token is its device role,
    capped by :data:`OFF_SOCKET`: it reads its session, and a companion talks."""
    if principal.session_scope is not None and principal.session_scope != session_id:
        raise Forbidden("this token is only good for another session")
    if principal.device_role is not None:
        return Role(principal.device_role)
    if principal.is_capability:
        return Role.AGENT
    wide = _wide_role(principal, owner_id)
    if wide is None:
        raise Forbidden("this session belongs to another user")
    return wide


def require_http(
    principal: Principal, session_id: str, owner_id: str, action: Action, *, ended: bool
) -> Role:
    """Whether an HTTP or gRPC caller may do ``action`` to the session (``ended``: it
    has ended): :func:`http_role`, then :func:`require`, then the credential's cap
    (:data:`OFF_SOCKET`); the agent capability is refused once its session has ended.
    Answers the role."""
    role = http_role(principal, session_id, owner_id)
    if ended and principal.is_capability:
        raise SessionEnded("this agent capability's session has ended")
    require(role, action)
    kind = principal.token_type or ""
    if kind in OFF_SOCKET and action not in OFF_SOCKET[kind]:
        raise NotAllowed(f"{_CREDENTIAL[kind]} only reads its session over HTTP and gRPC")
    return role


def may_open(principal: Principal, owner_id: str) -> bool:
    """Whether an unscoped credential gives any role in a session of ``owner_id``."""
    return principal.device_role is None and _wide_role(principal, owner_id) is not None


def _wide_role(principal: Principal, owner_id: str) -> Role | None:
    """A user's role in a session of ``owner_id`` (none for a device or the capability,
    whose role is their own)."""
    if principal.device_role is not None or principal.is_capability:
        return None
    if principal.is_admin:
        return Role.ADMIN
    if principal.sub == owner_id and principal.sub:
        return Role.OWNER
    if principal.is_service:
        return Role.SERVICE
    return None


def require_admin(principal: Principal) -> None:
    """An admin's own token: an admin's reconnect token opens only its session."""
    if not principal.is_admin or principal.session_scope is not None:
        raise Forbidden("admin only")


def can_create_sessions(principal: Principal) -> bool:
    """Scoped tokens (devices, reconnect) open one session and never create others."""
    return principal.session_scope is None and principal.device_role is None
