"""docs/protocol.md section 1's join rules as a pure function (hub/join_rules.py): every
row of its table, without a hub."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from companion_ws.auth.policy import Role
from companion_ws.auth.tokens import AGENT, DEVICE, RECONNECT, Principal
from companion_ws.hub.join_rules import Create, Join, plan
from companion_ws.protocol.errors import Forbidden, SessionEnded

ALICE = Principal(sub="alice")
BOB = Principal(sub="bob")
ADMIN = Principal(sub="ops", is_admin=True)
SERVICE = Principal(sub="svc", is_service=True)
RECONNECTING = Principal(sub="alice", session_scope="s1", token_type=RECONNECT)
PHONE = Principal(
    sub="alice", session_scope="s1", token_type=DEVICE, device_id="d1", device_role="companion"
)
CAPABILITY = Principal(sub="svc", session_scope="s1", token_type=AGENT)


@dataclass(frozen=True)
class Head:
    id: str = "s1"
    owner_id: str = "alice"
    ended_at: int | None = None
    end_reason: str | None = None


LIVE = Head()
ENDED = Head(ended_at=1, end_reason="ended")
EXPIRED = Head(ended_at=1, end_reason="expired")


def test_no_session_id_creates_one() -> None:
    assert plan(ALICE, None, None, "ui") == Create()


@pytest.mark.parametrize(
    ("who", "client", "role"),
    [
        (ALICE, "ui", Role.OWNER),
        (ALICE, "agent", Role.AGENT),
        (ADMIN, "ui", Role.ADMIN),
        (SERVICE, "ui", Role.SERVICE),
        (SERVICE, "agent", Role.AGENT),
        (RECONNECTING, "ui", Role.OWNER),
        (PHONE, "ui", Role.COMPANION),
        (CAPABILITY, "ui", Role.AGENT),
    ],
)
def test_a_live_session_is_joined_with_the_credentials_role(
    who: Principal, client: str, role: Role
) -> None:
    assert plan(who, "s1", LIVE, client) == Join(role)


def test_another_users_live_session_is_forbidden() -> None:
    with pytest.raises(Forbidden):
        plan(BOB, "s1", LIVE, "ui")


def test_a_joined_device_cannot_be_the_agent() -> None:
    with pytest.raises(Forbidden):
        plan(PHONE, "s1", LIVE, "agent")


@pytest.mark.parametrize("who", [RECONNECTING, PHONE, CAPABILITY])
@pytest.mark.parametrize("head", [None, ENDED, EXPIRED])
def test_a_scoped_token_whose_session_is_gone_is_refused(who: Principal, head: Head | None) -> None:
    with pytest.raises(SessionEnded):
        plan(who, "s1", head, "ui")


def test_a_missing_session_gives_a_new_one_saying_not_found() -> None:
    assert plan(ALICE, "s1", None, "ui") == Create(reason="not_found")


def test_another_users_ended_session_is_not_found_never_whose_it_was() -> None:
    assert plan(BOB, "s1", ENDED, "ui") == Create(reason="not_found")
    assert plan(BOB, "s1", EXPIRED, "ui") == Create(reason="not_found")


def test_ones_own_ended_session_gives_a_new_one_saying_why() -> None:
    assert plan(ALICE, "s1", ENDED, "ui") == Create(reason="ended")
    assert plan(ALICE, "s1", Head(ended_at=1), "ui") == Create(reason="expired")


def test_only_ones_own_expired_session_may_carry_on() -> None:
    assert plan(ALICE, "s1", EXPIRED, "ui") == Create(reason="expired", carry_on=True)
    # An admin or a service may open it, but it is not theirs to carry on.
    assert plan(ADMIN, "s1", EXPIRED, "ui") == Create(reason="expired")
    assert plan(SERVICE, "s1", EXPIRED, "ui") == Create(reason="expired")
