"""companion_ws.auth.tokens: verification pinned to one algorithm, and minting."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from companion_ws.auth.tokens import (
    JOIN,
    RECONNECT,
    Principal,
    TokenConfig,
    TokenService,
    is_join_code,
)
from companion_ws.protocol.errors import Unauthorized

SECRET = "unit-secret-" + "0123456789abcdef" * 4  # long enough for HS512
service = TokenService(TokenConfig(algorithm="HS256", verifying_key=SECRET, signing_key=SECRET))


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(**extra: Any) -> dict[str, Any]:
    return {"sub": "alice", "exp": int(time.time()) + 60, **extra}


def test_a_minted_token_verifies_to_its_principal() -> None:
    who = service.verify(service.mint("alice"))
    assert who.sub == "alice"
    assert not who.is_admin and not who.is_service and not who.is_join
    assert who.session_scope is None and who.token_type is None
    assert who.expires_at > time.time()


def test_admin_service_and_scope_claims() -> None:
    assert service.verify(service.mint("root", admin=True)).is_admin
    backend = service.verify(service.mint("svc", service=True))
    assert backend.is_service and not backend.is_admin
    scoped = service.verify(service.mint("alice", session_id="s1"))
    assert scoped.session_scope == "s1"


def test_the_admin_claim_may_be_a_list_of_roles() -> None:
    token = jwt.encode(_claims(role=["viewer", "admin"]), SECRET, algorithm="HS256")
    assert service.verify(token).is_admin


def test_a_configured_admin_claim_is_used() -> None:
    custom = TokenService(
        TokenConfig(
            algorithm="HS256",
            verifying_key=SECRET,
            signing_key=SECRET,
            admin_claim="groups",
            admin_value="ops",
        )
    )
    assert custom.verify(jwt.encode(_claims(groups=["ops"]), SECRET, algorithm="HS256")).is_admin
    assert not custom.verify(jwt.encode(_claims(role="admin"), SECRET, algorithm="HS256")).is_admin


def test_join_codes_and_reconnect_tokens() -> None:
    code = service.new_join_code()
    assert is_join_code(code) and not is_join_code(service.mint("alice"))
    who = service.verify(code)  # checked against the database by the node, not here
    assert who.is_join and who.token_type == JOIN and who.jti == code
    assert who.sub == "" and who.session_scope is None and not who.is_admin
    assert service.new_join_code() != code
    later = time.time() + 600  # the credential the connection was opened with expires then
    alice = Principal(sub="alice", expires_at=later)
    again = service.verify(service.mint_reconnect(alice, "s1", 60))
    assert again.token_type == RECONNECT and again.session_scope == "s1" and not again.is_join
    admin = Principal(sub="root", is_admin=True, expires_at=later)
    root = service.verify(service.mint_reconnect(admin, "s1", 60))
    assert root.is_admin and root.session_scope == "s1"  # an admin stays an admin


def test_the_oidc_sid_claim_is_not_a_session_scope() -> None:
    """Keycloak and other providers put their login session in ``sid``."""
    who = service.verify(jwt.encode(_claims(sid="keycloak-login-1"), SECRET, algorithm="HS256"))
    assert who.session_scope is None
    scoped = service.verify(
        jwt.encode(_claims(companion_sid="s1", typ="reconnect"), SECRET, algorithm="HS256")
    )
    assert scoped.session_scope == "s1"


def test_a_device_token_names_its_session_device_and_role_and_never_grows() -> None:
    expires = time.time() + 120
    token = service.mint_device("alice", "s1", "d1", "observer", expires)
    who = service.verify(token)
    assert (who.session_scope, who.device_id, who.device_role) == ("s1", "d1", "observer")
    assert who.is_device and int(who.expires_at) == int(expires) and not who.is_admin
    forged = jwt.encode(
        _claims(typ="device", companion_sid="s1", did="d1", drole="owner"),
        SECRET,
        algorithm="HS256",
    )
    with pytest.raises(Unauthorized, match="device and role"):
        service.verify(forged)


def test_the_agent_capability_is_the_only_thing_a_webhook_takes_for_a_session() -> None:
    cap = service.mint_capability("alice", "s1", 60)
    assert service.verify_capability(cap).session_scope == "s1"
    for not_a_capability in ("s1", "0f1e2d3c4b5a69788796a5b4c3d2e1f0", service.mint("alice")):
        with pytest.raises(Unauthorized, match="capability"):
            service.verify_capability(not_a_capability)


def test_clock_skew_within_the_leeway_is_accepted() -> None:
    ahead = int(time.time()) + 5
    token = jwt.encode(_claims(iat=ahead, nbf=ahead), SECRET, algorithm="HS256")
    assert service.verify(token).sub == "alice"  # leeway 10 s by default
    late = jwt.encode(_claims(exp=int(time.time()) - 5), SECRET, algorithm="HS256")
    assert service.verify(late).sub == "alice"


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "required"),
        ("", "required"),
        ("not.a.jwt", "invalid"),
        (jwt.encode(_claims(exp=int(time.time()) - 10), SECRET, algorithm="HS256"), "expired"),
        (jwt.encode(_claims(), "another-secret-0123456789-abcdefghijk", algorithm="HS256"), ""),
        (jwt.encode({"sub": "alice"}, SECRET, algorithm="HS256"), "exp"),
        (jwt.encode({"exp": int(time.time()) + 60}, SECRET, algorithm="HS256"), "sub"),
        (jwt.encode(_claims(sub=""), SECRET, algorithm="HS256"), ""),
        (jwt.encode(_claims(), SECRET, algorithm="HS512"), ""),
        (f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}.", ""),
    ],
    ids=[
        "missing",
        "empty",
        "garbage",
        "expired",
        "bad-signature",
        "no-exp",
        "no-sub",
        "empty-sub",
        "other-algorithm",
        "alg-none",
    ],
)
def test_bad_tokens_are_unauthorized(token: str | None, message: str) -> None:
    with pytest.raises(Unauthorized) as info:
        service.verify(token)
    assert message in info.value.message
    assert info.value.code == "unauthorized" and info.value.close_code == 4401


def test_a_non_string_sub_is_unauthorized() -> None:
    token = jwt.encode(_claims(sub=42), SECRET, algorithm="HS256")
    with pytest.raises(Unauthorized):
        service.verify(token)


def test_the_none_algorithm_cannot_be_configured() -> None:
    with pytest.raises(ValueError):
        TokenService(TokenConfig(algorithm="none", verifying_key=""))


def test_audience_and_issuer_are_checked_when_configured() -> None:
    strict = TokenService(
        TokenConfig(
            algorithm="HS256",
            verifying_key=SECRET,
            signing_key=SECRET,
            audience="companion",
            issuer="https://idp.example",
        )
    )
    assert strict.verify(strict.mint("alice")).sub == "alice"  # mint adds aud and iss
    for claims in (
        _claims(),
        _claims(aud="other", iss="https://idp.example"),
        _claims(aud="companion", iss="https://evil.example"),
    ):
        with pytest.raises(Unauthorized):
            strict.verify(jwt.encode(claims, SECRET, algorithm="HS256"))


def test_rs256_verifies_with_the_public_key_only() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    public = (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    verifier = TokenService(TokenConfig(algorithm="RS256", verifying_key=public))
    assert not verifier.can_mint
    assert verifier.verify(jwt.encode(_claims(), private, algorithm="RS256")).sub == "alice"
    # The classic confusion: an HS256 token "signed" with the public key as the secret.
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT'})}.{_b64(_claims())}"
    mac = hmac.new(public.encode(), signing_input.encode(), hashlib.sha256).digest()
    forged = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    with pytest.raises(Unauthorized):
        verifier.verify(forged)
    with pytest.raises(Unauthorized):
        verifier.verify(jwt.encode(_claims(), SECRET, algorithm="HS256"))
    with pytest.raises(RuntimeError):
        verifier.mint("alice")
