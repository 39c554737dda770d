"""JWTs with PyJWT: verification with a pinned algorithm, and minting.

Token kinds: an access token (a JWT, no ``typ``), a ``reconnect`` token (a JWT with
``typ: reconnect`` scoped to one session: a token with a ``sid`` claim admits only that
session), and a one-time *join code*: not a JWT but a short random string the database
knows (so the QR code that carries it stays small). :meth:`TokenService.verify` turns a
join code into a join principal whose session the node resolves when it consumes it.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt

from companion_ws.errors import Unauthorized

JOIN = "join"
JOIN_CODE_BYTES = 16


def is_join_code(token: str) -> bool:
    """A JWT has two dots; a join code is plain URL-safe base64."""
    return "." not in token and 16 <= len(token) <= 64


RECONNECT = "reconnect"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling, from a verified token."""

    sub: str
    is_admin: bool = False
    is_service: bool = False
    session_scope: str | None = None
    token_type: str | None = None
    jti: str | None = None
    expires_at: float = 0.0

    @property
    def is_join(self) -> bool:
        return self.token_type == JOIN


@dataclass(frozen=True, slots=True)
class TokenConfig:
    algorithm: str
    verifying_key: str
    signing_key: str | None = None
    audience: str | None = None
    issuer: str | None = None
    admin_claim: str = "role"
    admin_value: str = "admin"
    service_value: str = "service"


class TokenService:
    """Verifies tokens with exactly one configured algorithm and mints new ones."""

    def __init__(self, config: TokenConfig) -> None:
        if config.algorithm.lower() == "none":
            raise ValueError("the 'none' algorithm is never accepted")
        self._config = config

    @property
    def can_mint(self) -> bool:
        return self._config.signing_key is not None

    def verify(self, token: str | None) -> Principal:
        """A Principal for a valid token; :class:`Unauthorized` otherwise."""
        if not token:
            raise Unauthorized("a token is required (?token= or Authorization: Bearer)")
        if is_join_code(token):
            return Principal(sub="", token_type=JOIN, jti=token)
        cfg = self._config
        try:
            claims = jwt.decode(
                token,
                cfg.verifying_key,
                algorithms=[cfg.algorithm],
                audience=cfg.audience,
                issuer=cfg.issuer,
                options={"require": ["exp", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"the token is invalid: {exc}") from None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise Unauthorized("the token's sub must be a non-empty string")
        role = claims.get(cfg.admin_claim)
        roles = role if isinstance(role, list) else [role]
        sid = claims.get("sid")
        typ = claims.get("typ")
        return Principal(
            sub=sub,
            is_admin=cfg.admin_value in roles,
            is_service=cfg.service_value in roles,
            session_scope=sid if isinstance(sid, str) else None,
            token_type=typ if isinstance(typ, str) else None,
            jti=claims.get("jti") if isinstance(claims.get("jti"), str) else None,
            expires_at=float(claims["exp"]),
        )

    def mint(
        self,
        sub: str,
        *,
        ttl: float = 3600.0,
        admin: bool = False,
        service: bool = False,
        session_id: str | None = None,
        token_type: str | None = None,
        jti: str | None = None,
    ) -> str:
        cfg = self._config
        if cfg.signing_key is None:
            raise RuntimeError("no signing key configured: this hub only verifies tokens")
        now = int(time.time())
        claims: dict[str, Any] = {"sub": sub, "iat": now, "exp": now + int(ttl)}
        if admin or service:
            claims[cfg.admin_claim] = cfg.admin_value if admin else cfg.service_value
        if session_id is not None:
            claims["sid"] = session_id
        if token_type is not None:
            claims["typ"] = token_type
        if jti is not None:
            claims["jti"] = jti
        if cfg.audience:
            claims["aud"] = cfg.audience
        if cfg.issuer:
            claims["iss"] = cfg.issuer
        return jwt.encode(claims, cfg.signing_key, algorithm=cfg.algorithm)

    @staticmethod
    def new_join_code() -> str:
        """A one-time join code (22 characters); the database holds its session and expiry."""
        return secrets.token_urlsafe(JOIN_CODE_BYTES)

    def mint_reconnect(self, sub: str, session_id: str, ttl: float) -> str:
        return self.mint(sub, ttl=ttl, session_id=session_id, token_type=RECONNECT)
