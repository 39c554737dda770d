"""companion_ws.auth.policy: the role table of docs/protocol.md section 11, without a server."""

from __future__ import annotations

import pytest

from companion_ws.auth import policy
from companion_ws.auth.policy import Action, Role
from companion_ws.auth.tokens import Principal
from companion_ws.protocol.errors import Forbidden

ALICE = Principal(sub="alice")
BOB = Principal(sub="bob")
ADMIN = Principal(sub="root", is_admin=True)
SERVICE = Principal(sub="backend", is_service=True)
ALICE_S1 = Principal(sub="alice", session_scope="s1", token_type="reconnect")
PHONE_S1 = Principal(
    sub="alice",
    session_scope="s1",
    token_type="device",
    device_id="d1",
    device_role="companion",
)
TV_S1 = Principal(
    sub="alice", session_scope="s1", token_type="device", device_id="d2", device_role="observer"
)

#: docs/protocol.md section 11, row by row.
TABLE = {
    Role.OWNER: {"read", "write", "converse", "end", "invite", "devices", "talk", "voice", "steer"},
    Role.AGENT: {"read", "write", "converse", "voice"},
    Role.COMPANION: {"read", "write", "talk", "voice", "steer"},
    Role.OBSERVER: {"read"},
    Role.SERVICE: {"read", "write", "converse"},
    Role.ADMIN: {"read", "write", "converse", "end", "invite", "devices", "talk", "voice", "steer"},
}


@pytest.mark.parametrize("role", list(Role))
@pytest.mark.parametrize("action", list(Action))
def test_every_cell_of_the_table(role: Role, action: Action) -> None:
    allowed = action.value in TABLE[role]
    assert policy.allows(role, action) is allowed
    if allowed:
        policy.require(role, action)
    else:
        with pytest.raises(Forbidden, match=f"the {role.value} role may not"):
            policy.require(role, action)


@pytest.mark.parametrize(
    ("who", "client", "role"),
    [
        (ALICE, "ui", Role.OWNER),
        (ALICE, "agent", Role.AGENT),
        (ALICE_S1, "ui", Role.OWNER),
        (ADMIN, "ui", Role.ADMIN),
        (ADMIN, "agent", Role.AGENT),
        (SERVICE, "backend", Role.SERVICE),
        (SERVICE, "agent", Role.AGENT),
        (PHONE_S1, "ui", Role.COMPANION),
        (TV_S1, "ui", Role.OBSERVER),
    ],
)
def test_a_connection_role_comes_from_its_credential(
    who: Principal, client: str, role: Role
) -> None:
    assert policy.socket_role(who, "s1", "alice", client) is role


@pytest.mark.parametrize(
    ("who", "session", "client"),
    [
        (BOB, "s1", "ui"),  # a stranger
        (BOB, "s1", "agent"),  # calling itself the agent changes nothing
        (ALICE_S1, "s2", "ui"),  # a scoped token, another session
        (PHONE_S1, "s2", "ui"),
        (PHONE_S1, "s1", "agent"),  # a joined device is never the agent
    ],
)
def test_no_credential_no_role(who: Principal, session: str, client: str) -> None:
    with pytest.raises(Forbidden):
        policy.socket_role(who, session, "alice", client)


def test_over_http_a_device_reads_its_session_and_a_companion_talks() -> None:
    assert policy.http_role(PHONE_S1, "s1", "alice") is Role.COMPANION
    assert policy.http_role(TV_S1, "s1", "alice") is Role.OBSERVER
    # The voice follows the user to a companion (section 17): it signs a conversation.
    policy.require_http(PHONE_S1, "s1", "alice", Action.TALK, ended=False)
    with pytest.raises(Forbidden):
        policy.require_http(TV_S1, "s1", "alice", Action.TALK, ended=False)
    for device in (PHONE_S1, TV_S1):
        policy.require_http(device, "s1", "alice", Action.READ, ended=False)
        for action in (Action.WRITE, Action.END, Action.INVITE, Action.DEVICES):
            with pytest.raises(Forbidden):
                policy.require_http(device, "s1", "alice", action, ended=False)
    assert policy.http_role(ALICE, "s1", "alice") is Role.OWNER
    assert policy.http_role(SERVICE, "s1", "alice") is Role.SERVICE
    with pytest.raises(Forbidden):
        policy.http_role(BOB, "s1", "alice")


def test_a_scoped_token_admits_only_its_session() -> None:
    policy.check_scope(ALICE_S1, "s1")
    policy.check_scope(ALICE, "anything")
    policy.check_scope(ALICE, None)
    for requested in ("s2", None):
        with pytest.raises(Forbidden):
            policy.check_scope(ALICE_S1, requested)


def test_admin_only() -> None:
    policy.require_admin(ADMIN)
    for who in (ALICE, SERVICE):
        with pytest.raises(Forbidden):
            policy.require_admin(who)


def test_scoped_tokens_cannot_create_sessions() -> None:
    assert policy.can_create_sessions(ALICE)
    assert policy.can_create_sessions(ADMIN)
    assert not policy.can_create_sessions(ALICE_S1)
    assert not policy.can_create_sessions(PHONE_S1)
