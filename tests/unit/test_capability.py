"""The agent capability is the agent role, never more (docs/protocol.md section 11, v1.2), and
a reconnect token never outlives what it came from (section 12, v1.2): the tokens and
the role table, without a server."""

from __future__ import annotations

import time

import jwt
import pytest

from companion_ws.auth import policy
from companion_ws.auth.policy import Action, Role
from companion_ws.auth.tokens import AGENT, RECONNECT, Principal, TokenConfig, TokenService
from companion_ws.protocol.errors import Forbidden, SessionEnded, Unauthorized

SECRET = "unit-secret-0123456789-abcdefghijklmnopqrstuvwxyz"
service = TokenService(TokenConfig(algorithm="HS256", verifying_key=SECRET, signing_key=SECRET))
CAPABILITY_AUDIENCE = "companion-agent"  # companion_ws.auth.tokens', spelled out
ALL_BUT_READ = [a for a in Action if a is not Action.READ]


def _claims(token: str) -> dict[str, object]:
    claims: dict[str, object] = jwt.decode(
        token, SECRET, algorithms=["HS256"], options={"verify_aud": False}
    )
    return claims


def test_the_capability_names_who_obtained_it_its_one_session_and_its_own_audience() -> None:
    before = time.time()
    cap = service.mint_capability("svc-1", "s1", 3600)
    claims = _claims(cap)
    assert claims["sub"] == "svc-1" and claims["companion_sid"] == "s1"
    assert claims["typ"] == AGENT and claims["aud"] == CAPABILITY_AUDIENCE
    assert "role" not in claims  # no admin or service claim: the agent role only
    assert int(before) + 3600 <= int(str(claims["exp"])) <= time.time() + 3600
    who = service.verify(cap)
    assert who.is_capability and who.sub == "svc-1" and who.session_scope == "s1"
    assert not who.is_admin and not who.is_service and who.device_role is None


def test_a_user_token_path_never_takes_the_capability() -> None:
    cap = service.mint_capability("alice", "s1", 60)
    with pytest.raises(Unauthorized):
        service.verify_user(cap)
    # A capability of before v1.2 (no audience of its own) is no user token either.
    legacy = service.mint("alice", session_id="s1", token_type=AGENT)
    with pytest.raises(Unauthorized, match="capability"):
        service.verify_user(legacy)
    with pytest.raises(Unauthorized, match="capability"):
        service.verify_capability(legacy)
    with pytest.raises(Unauthorized):
        service.verify(legacy)


def test_the_capability_path_takes_nothing_but_the_capability() -> None:
    later = time.time() + 600
    for not_a_capability in (
        service.mint("alice"),
        service.mint("root", admin=True),
        service.mint_reconnect(Principal(sub="alice", expires_at=later), "s1", 60),
        service.mint_device("alice", "s1", "d1", "companion", later),
    ):
        with pytest.raises(Unauthorized, match="capability"):
            service.verify_capability(not_a_capability)


def test_a_capability_re_minted_from_a_hub_issued_credential_never_outlives_it() -> None:
    soon = time.time() + 30
    cap = service.mint_capability("alice", "s1", 3600, not_after=soon)
    assert service.verify(cap).expires_at <= soon


def test_with_a_configured_audience_the_two_paths_stay_apart() -> None:
    both = TokenService(
        TokenConfig(
            algorithm="HS256", verifying_key=SECRET, signing_key=SECRET, audience="companion"
        )
    )
    cap = both.mint_capability("alice", "s1", 60)
    assert _claims(cap)["aud"] == CAPABILITY_AUDIENCE
    assert both.verify(cap).is_capability
    with pytest.raises(Unauthorized):
        both.verify_user(cap)
    assert not both.verify(both.mint("alice")).is_capability


CAP_S1 = Principal(sub="alice", session_scope="s1", token_type=AGENT, expires_at=1e12)
SERVICE_CAP_S1 = Principal(sub="svc-1", session_scope="s1", token_type=AGENT, expires_at=1e12)


@pytest.mark.parametrize("client", ["ui", "agent", "backend"])
def test_on_the_socket_the_capability_is_the_agent(client: str) -> None:
    for cap in (CAP_S1, SERVICE_CAP_S1):
        assert policy.socket_role(cap, "s1", "alice", client) is Role.AGENT
        with pytest.raises(Forbidden):
            policy.socket_role(cap, "s2", "alice", client)


@pytest.mark.parametrize("cap", [CAP_S1, SERVICE_CAP_S1])
def test_over_http_the_capability_reads_its_session_and_nothing_more(cap: Principal) -> None:
    assert policy.require_http(cap, "s1", "alice", Action.READ, ended=False) is Role.AGENT
    for action in ALL_BUT_READ:
        with pytest.raises(Forbidden):
            policy.require_http(cap, "s1", "alice", action, ended=False)
    with pytest.raises(Forbidden):
        policy.require_http(cap, "s2", "alice", Action.READ, ended=False)
    assert not policy.can_create_sessions(cap)
    assert not policy.may_open(cap, "alice")
    with pytest.raises(Forbidden):
        policy.require_admin(cap)


def test_the_capability_is_refused_once_its_session_has_ended() -> None:
    with pytest.raises(SessionEnded):
        policy.require_http(CAP_S1, "s1", "alice", Action.READ, ended=True)
    # The owner's own token still reads an ended session.
    owner = Principal(sub="alice", expires_at=1e12)
    policy.require_http(owner, "s1", "alice", Action.READ, ended=True)


def test_a_reconnect_token_expires_with_the_credential_it_came_from() -> None:
    login = time.time() + 3  # a 3 s access token
    first = service.mint_reconnect(Principal(sub="alice", expires_at=login), "s1", 86400)
    again = service.verify(first)
    assert again.token_type == RECONNECT and again.expires_at <= login
    # Reconnecting with it re-mints from it: never later.
    second = service.verify(service.mint_reconnect(again, "s1", 86400))
    assert second.expires_at <= again.expires_at
    # A long-lived credential still gets at most the reconnect TTL.
    year = time.time() + 365 * 86400
    capped = service.verify(service.mint_reconnect(Principal(sub="a", expires_at=year), "s1", 60))
    assert capped.expires_at <= time.time() + 60


def test_a_reconnect_token_reads_its_session_off_the_socket_and_nothing_more() -> None:
    owner = Principal(sub="alice", session_scope="s1", token_type=RECONNECT, expires_at=1e12)
    admin = Principal(
        sub="root", is_admin=True, session_scope="s1", token_type=RECONNECT, expires_at=1e12
    )
    for who in (owner, admin):
        assert policy.socket_role(who, "s1", "alice", "ui") in (Role.OWNER, Role.ADMIN)
        policy.require_http(who, "s1", "alice", Action.READ, ended=False)
        for action in ALL_BUT_READ:
            with pytest.raises(Forbidden, match="reconnect token"):
                policy.require_http(who, "s1", "alice", action, ended=False)
    with pytest.raises(Forbidden):
        policy.require_admin(admin)  # the admin API wants the admin's own token
