"""companion_ws.auth.policy: who may do what to which session."""

from __future__ import annotations

import pytest

from companion_ws.auth import policy
from companion_ws.auth.tokens import Principal
from companion_ws.errors import Forbidden

ALICE = Principal(sub="alice")
BOB = Principal(sub="bob")
ADMIN = Principal(sub="root", is_admin=True)
SERVICE = Principal(sub="backend", is_service=True)
ALICE_S1 = Principal(sub="alice", session_scope="s1", token_type="reconnect")
ADMIN_S1 = Principal(sub="root", is_admin=True, session_scope="s1")


@pytest.mark.parametrize(
    ("who", "allowed"),
    [(ALICE, True), (BOB, False), (ADMIN, True), (SERVICE, False), (ALICE_S1, True)],
)
def test_access_to_alices_session_s1(who: Principal, allowed: bool) -> None:
    assert policy.can_access(who, "s1", "alice") is allowed
    if allowed:
        policy.require_access(who, "s1", "alice")
    else:
        with pytest.raises(Forbidden):
            policy.require_access(who, "s1", "alice")


def test_a_scoped_token_admits_only_its_session() -> None:
    assert not policy.can_access(ALICE_S1, "s2", "alice")
    assert not policy.can_access(ADMIN_S1, "s2", "alice")  # even an admin's scoped token
    policy.check_scope(ALICE_S1, "s1")
    policy.check_scope(ALICE, "anything")
    policy.check_scope(ALICE, None)
    for requested in ("s2", None):
        with pytest.raises(Forbidden):
            policy.check_scope(ALICE_S1, requested)


def test_a_service_may_publish_anywhere_and_a_stranger_nowhere() -> None:
    assert policy.can_publish(SERVICE, "s1", "alice")
    assert policy.can_publish(ALICE, "s1", "alice")
    assert policy.can_publish(ADMIN, "s1", "alice")
    assert not policy.can_publish(BOB, "s1", "alice")


def test_admin_only() -> None:
    policy.require_admin(ADMIN)
    for who in (ALICE, SERVICE):
        with pytest.raises(Forbidden):
            policy.require_admin(who)


def test_scoped_tokens_cannot_create_sessions() -> None:
    assert policy.can_create_sessions(ALICE)
    assert policy.can_create_sessions(ADMIN)
    assert not policy.can_create_sessions(ALICE_S1)
