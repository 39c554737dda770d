"""The JWT key configuration, checked before anything starts: each mistake refused with
one line that says what to do. Pure."""

from __future__ import annotations

__all__ = ["MIN_SECRET_BYTES", "KeyConfigError", "check_keys"]

#: RFC 7518 section 3.2: an HS256 key at least as long as the hash output.
MIN_SECRET_BYTES = 32
_HMAC = ("HS256", "HS384", "HS512")
_ASYMMETRIC = ("RS", "PS", "ES", "Ed")


class KeyConfigError(ValueError):
    """A key configuration the hub refuses to start with."""


def check_keys(
    secret: str | None, public_key: str | None, algorithm: str, jwks_url: str | None = None
) -> None:
    """Refuse a short HMAC secret, a public key with an HMAC algorithm, an asymmetric
    algorithm without a public key, and a secret and a public key at once; a JWKS URL
    with either, or with an HMAC algorithm."""
    alg = algorithm.strip()
    if alg.lower() == "none":
        raise KeyConfigError("COMPANION_JWT_ALGORITHM=none is never accepted: use HS256 or RS256")
    if jwks_url and (secret or public_key):
        raise KeyConfigError(
            "set COMPANION_JWT_JWKS_URL or COMPANION_JWT_SECRET/COMPANION_JWT_PUBLIC_KEY, not "
            "both: with a JWKS URL the hub verifies the identity provider's keys only"
        )
    if jwks_url and alg in _HMAC:
        raise KeyConfigError(
            f"COMPANION_JWT_JWKS_URL is set but COMPANION_JWT_ALGORITHM is {alg}: set it to "
            "the algorithm your identity provider signs with (RS256, ES256, ...)"
        )
    if jwks_url and not jwks_url.startswith(("https://", "http://")):
        raise KeyConfigError(f"COMPANION_JWT_JWKS_URL must be an https:// URL, not {jwks_url!r}")
    if secret and public_key:
        raise KeyConfigError(
            "set COMPANION_JWT_SECRET or COMPANION_JWT_PUBLIC_KEY, not both: a hub either "
            "signs its own tokens (secret) or only verifies an identity provider's (public key)"
        )
    if public_key and alg in _HMAC:
        raise KeyConfigError(
            f"COMPANION_JWT_PUBLIC_KEY is set but COMPANION_JWT_ALGORITHM is {alg}: set it to "
            "the key's algorithm (RS256, ES256, ...), or a public key would be used as a secret"
        )
    if secret and alg in _HMAC and len(secret.encode()) < MIN_SECRET_BYTES:
        raise KeyConfigError(
            f"COMPANION_JWT_SECRET is {len(secret.encode())} bytes: {alg} needs at least "
            f"{MIN_SECRET_BYTES}; make one with: "
            "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )
    if secret and alg.startswith(_ASYMMETRIC):
        raise KeyConfigError(
            f"COMPANION_JWT_ALGORITHM is {alg} but only COMPANION_JWT_SECRET is set: give "
            "COMPANION_JWT_PUBLIC_KEY, or use HS256 with the secret"
        )
