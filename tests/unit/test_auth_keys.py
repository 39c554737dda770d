"""companion_ws.auth.keys: the key configurations the hub refuses to start with."""

from __future__ import annotations

import pytest

from companion_ws.auth.keys import KeyConfigError, check_keys

GOOD = "s" * 32
PEM = "-----BEGIN PUBLIC KEY-----\nMIIB...\n-----END PUBLIC KEY-----"


@pytest.mark.parametrize(
    ("secret", "public", "alg"),
    [(GOOD, None, "HS256"), (None, PEM, "RS256"), (None, PEM, "ES256"), ("x" * 64, None, "HS512")],
)
def test_sound_configurations_start(secret: str | None, public: str | None, alg: str) -> None:
    check_keys(secret, public, alg)


@pytest.mark.parametrize(
    ("secret", "public", "alg", "says"),
    [
        ("x", None, "HS256", "needs at least 32"),
        ("change-me", None, "HS256", "needs at least 32"),
        (None, PEM, "HS256", "would be used as a secret"),
        (None, "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8A", "HS256", "would be used as a secret"),
        (GOOD, PEM, "RS256", "not both"),
        (GOOD, None, "RS256", "only COMPANION_JWT_SECRET is set"),
        (GOOD, None, "none", "never accepted"),
    ],
)
def test_each_mistake_is_refused_with_one_line_that_says_what_to_do(
    secret: str | None, public: str | None, alg: str, says: str
) -> None:
    with pytest.raises(KeyConfigError, match=says) as refused:
        check_keys(secret, public, alg)
    assert "\n" not in str(refused.value)
