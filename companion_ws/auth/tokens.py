"""JWTs with PyJWT: verification with a pinned algorithm, and minting.

Token kinds (docs/protocol.md sections 8 and 11):

- an access token: a JWT from the identity provider, no ``typ``;
- ``reconnect``: a JWT the hub mints for an access token's connection, scoped to one
  session by the hub's own claim ``companion_sid`` (the OpenID Connect ``sid`` claim,
  which identity providers use for their login session, is ignored), expiring no later
  than the credential it came from;
- ``device``: the hub's JWT for a device that joined by join code: ``companion_sid``,
  the device (``did``) and its role (``drole``), expiring a fixed time after the join;
- ``agent``: the *agent capability* an ElevenLabs conversation carries in its
  ``session_id`` dynamic variable: a token of its own audience (:data:`CAPABILITY_AUDIENCE`),
  never a user's, naming the principal that obtained it (``sub``) and its one session
  (``companion_sid``), with an expiry. :meth:`TokenService.verify_user` never accepts it
  and :meth:`TokenService.verify_capability` accepts nothing else; what it may do is the
  agent role's and no more (:mod:`companion_ws.auth.policy`);
- a one-time *join code*: not a JWT but a short random string the database knows (so
  the QR code that carries it stays small). :meth:`TokenService.verify` turns it into a
  join principal whose session the directory resolves when it consumes it.
"""

from __future__ import annotations

import contextlib
import copy
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt

from companion_ws.auth.jwks import JwksKeys
from companion_ws.protocol.errors import Unauthorized

JOIN = "join"
JOIN_CODE_BYTES = 16


def is_join_code(token: str) -> bool:
    """A JWT has two dots; a join code is plain URL-safe base64."""
    return "." not in token and 16 <= len(token) <= 64


RECONNECT = "reconnect"
DEVICE = "device"
AGENT = "agent"
#: The hub's session-scope claim.
SCOPE_CLAIM = "companion_sid"
#: The agent capability's audience: no user token has it, and it is only ever checked
#: as a capability's.
CAPABILITY_AUDIENCE = "companion-agent"


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
    device_id: str | None = None  # a joined device's, from its device token
    device_role: str | None = None  # "companion" or "observer", from its device token

    @property
    def is_join(self) -> bool:
        return self.token_type == JOIN

    @property
    def is_device(self) -> bool:
        return self.token_type == DEVICE

    @property
    def is_capability(self) -> bool:
        """The agent capability: the agent role in one session, never a user."""
        return self.token_type == AGENT


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
    leeway: float = 10.0  # seconds of clock skew allowed on exp, nbf and iat
    jwks: JwksKeys | None = None  # an identity provider's keys by kid, instead of verifying_key


def _codec(config: TokenConfig) -> jwt.PyJWT:
    """A PyJWT of our own whose algorithm prepares the configured keys once.

    PyJWT prepares the key on every ``decode`` and ``encode``: for an HMAC secret it
    checks that the secret is not a PEM, SSH, DER or JWK key (a failed ``json.loads``
    and two failed DER parses, each raising), for an RSA or EC key it parses the PEM.
    That was about a tenth of the hub's CPU time per connect. The checks still run,
    once, here; a key they refuse is left to fail on each use, as before, and any
    other key goes through them each time. A PyJWT without a JWS of its own per
    instance (older than ours) just runs as before.
    """
    codec = jwt.PyJWT()
    jws = getattr(codec, "_jws", None)
    if not isinstance(jws, jwt.PyJWS):
        return codec
    try:
        algorithm = jws.get_algorithm_by_name(config.algorithm)
    except NotImplementedError:
        return codec  # an unknown algorithm: decode refuses every token, as before
    prepare = algorithm.prepare_key
    ready: dict[str | bytes, Any] = {}
    for key in (config.verifying_key, config.signing_key):
        if key is not None and key not in ready:
            with contextlib.suppress(jwt.PyJWTError):
                ready[key] = prepare(key)

    def prepare_key(key: Any) -> Any:
        if isinstance(key, str | bytes) and key in ready:
            return ready[key]
        return prepare(key)

    fast = copy.copy(algorithm)
    fast.prepare_key = prepare_key  # type: ignore[method-assign]
    jws.unregister_algorithm(config.algorithm)
    jws.register_algorithm(config.algorithm, fast)
    return codec


class TokenService:
    """Verifies tokens with exactly one configured algorithm and mints new ones."""

    def __init__(self, config: TokenConfig) -> None:
        if config.algorithm.lower() == "none":
            raise ValueError("the 'none' algorithm is never accepted")
        self._config = config
        self._jwt = _codec(config)

    @property
    def can_mint(self) -> bool:
        return self._config.signing_key is not None

    @property
    def jwks(self) -> JwksKeys | None:
        return self._config.jwks

    async def ensure_key(self, token: str | None) -> None:
        """Before a door verifies ``token``: fetch the JWKS in a thread if the token's key
        needs it (a no-op without ``COMPANION_JWT_JWKS_URL``)."""
        if self._config.jwks is not None:
            await self._config.jwks.ensure(token)

    def verify(self, token: str | None) -> Principal:
        """The credential of a door that takes every kind (``/ws``, the HTTP API, gRPC,
        the AG-UI stream): a user's token (:meth:`verify_user`) or else the agent
        capability (:meth:`verify_capability`); :class:`Unauthorized` otherwise."""
        if not token:
            raise Unauthorized("a token is required (?token= or Authorization: Bearer)")
        if is_join_code(token):
            return Principal(sub="", token_type=JOIN, jti=token)
        try:
            return self.verify_user(token)
        except _OtherAudience as not_a_user:
            try:
                return self._capability(token)
            except _OtherAudience:
                raise Unauthorized(not_a_user.message) from None

    def verify_user(self, token: str) -> Principal:
        """A user's, service's, admin's or joined device's token (the identity
        provider's, or the hub's reconnect or device token): never the agent
        capability, whose audience is not a user token's. :class:`Unauthorized`
        otherwise."""
        if is_join_code(token):
            return Principal(sub="", token_type=JOIN, jti=token)
        cfg = self._config
        claims = self._decode(token, cfg.audience)
        sub = claims["sub"]
        role = claims.get(cfg.admin_claim)
        roles = role if isinstance(role, list) else [role]
        typ = _text(claims.get("typ"))
        scope = _text(claims.get(SCOPE_CLAIM))
        if typ == AGENT:
            raise Unauthorized("an agent capability is not a user's token")
        if typ in (RECONNECT, DEVICE) and scope is None:
            raise Unauthorized(f"a {typ} token must name its session")
        device_role = _text(claims.get("drole")) if typ == DEVICE else None
        if typ == DEVICE and (
            device_role not in ("companion", "observer") or not claims.get("did")
        ):
            raise Unauthorized("a device token must name its device and role")
        return Principal(
            sub=sub,
            is_admin=cfg.admin_value in roles and typ != DEVICE,
            is_service=cfg.service_value in roles and typ != DEVICE,
            session_scope=scope,
            token_type=typ,
            jti=_text(claims.get("jti")),
            expires_at=float(claims["exp"]),
            device_id=_text(claims.get("did")) if typ == DEVICE else None,
            device_role=device_role,
        )

    def _decode(self, token: str, audience: str | None) -> dict[str, Any]:
        """The token's verified claims for ``audience``; :class:`_OtherAudience` when
        the token is signed right but for another audience."""
        cfg = self._config
        key = cfg.verifying_key if cfg.jwks is None else cfg.jwks.key_for(token)
        try:
            claims: dict[str, Any] = self._jwt.decode(
                token,
                key,
                algorithms=[cfg.algorithm],
                audience=audience,
                issuer=cfg.issuer,
                leeway=cfg.leeway,
                options={"require": ["exp", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise Unauthorized("the token has expired") from None
        except jwt.InvalidAudienceError as exc:
            raise _OtherAudience(f"the token is invalid: {exc}") from None
        except jwt.MissingRequiredClaimError as exc:
            if exc.claim == "aud":
                raise _OtherAudience(f"the token is invalid: {exc}") from None
            raise Unauthorized(f"the token is invalid: {exc}") from None
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"the token is invalid: {exc}") from None
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            raise Unauthorized("the token's sub must be a non-empty string")
        return claims

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
        expires_at: float | None = None,
        extra: dict[str, Any] | None = None,
    ) -> str:
        """A JWT signed with the configured key; ``expires_at`` (unix seconds) wins
        over ``ttl``."""
        cfg = self._config
        if cfg.signing_key is None:
            raise RuntimeError("no signing key configured: this hub only verifies tokens")
        now = int(time.time())
        exp = int(expires_at) if expires_at is not None else now + int(ttl)
        claims: dict[str, Any] = {"sub": sub, "iat": now, "exp": exp, **(extra or {})}
        if admin or service:
            claims[cfg.admin_claim] = cfg.admin_value if admin else cfg.service_value
        if session_id is not None:
            claims[SCOPE_CLAIM] = session_id
        if token_type is not None:
            claims["typ"] = token_type
        if jti is not None:
            claims["jti"] = jti
        if cfg.audience and "aud" not in claims:
            claims["aud"] = cfg.audience
        if cfg.issuer:
            claims["iss"] = cfg.issuer
        return self._jwt.encode(claims, cfg.signing_key, algorithm=cfg.algorithm)

    @staticmethod
    def new_join_code() -> str:
        """A one-time join code (22 characters); the database holds its session and expiry."""
        return secrets.token_urlsafe(JOIN_CODE_BYTES)

    def mint_reconnect(self, principal: Principal, session_id: str, ttl: float) -> str:
        """For a connection opened with a user's token: the same principal (an admin
        stays an admin), scoped to the session, for ``ttl`` seconds but never past the
        principal's own expiry: reconnecting with it never extends it, and only a fresh
        credential yields a later one (docs/protocol.md section 12)."""
        return self.mint(
            principal.sub,
            expires_at=min(time.time() + ttl, principal.expires_at),
            admin=principal.is_admin,
            service=principal.is_service and not principal.is_admin,
            session_id=session_id,
            token_type=RECONNECT,
        )

    def mint_device(
        self, owner: str, session_id: str, device_id: str, role: str, expires_at: float
    ) -> str:
        """A joined device's token: its session, device and role, until ``expires_at``
        (fixed at the join: reconnecting never extends it)."""
        return self.mint(
            owner,
            session_id=session_id,
            token_type=DEVICE,
            expires_at=expires_at,
            extra={"did": device_id, "drole": role},
        )

    def mint_capability(
        self, sub: str, session_id: str, ttl: float, *, not_after: float | None = None
    ) -> str:
        """The agent capability for one session (an ElevenLabs conversation's
        ``session_id`` dynamic variable; an agent's welcome): ``sub`` is the principal
        whose connection or call obtains it (the owner, a service or an admin, never the
        owner on someone's behalf). It lives ``ttl`` seconds, and never past
        ``not_after`` when given (a capability re-minted from a hub-issued credential
        never outlives it)."""
        expires_at = time.time() + ttl
        if not_after is not None:
            expires_at = min(expires_at, not_after)
        return self.mint(
            sub,
            session_id=session_id,
            token_type=AGENT,
            expires_at=expires_at,
            extra={"aud": CAPABILITY_AUDIENCE},
        )

    def verify_capability(self, token: str) -> Principal:
        """The agent capability's principal (its obtainer, its session, the agent role),
        or :class:`Unauthorized` for anything else: a bare session id, a user's token."""
        if is_join_code(token) or token.count(".") != 2:
            raise Unauthorized("session_id must be the session's agent capability, not its bare id")
        try:
            return self._capability(token)
        except _OtherAudience:
            raise Unauthorized("session_id must be the session's agent capability") from None

    def _capability(self, token: str) -> Principal:
        """The capability's principal; :class:`_OtherAudience` for a token of another
        audience (a user's)."""
        claims = self._decode(token, CAPABILITY_AUDIENCE)
        scope = _text(claims.get(SCOPE_CLAIM))
        if claims.get("typ") != AGENT or scope is None:
            raise Unauthorized("session_id must be the session's agent capability")
        return Principal(
            sub=claims["sub"],
            session_scope=scope,
            token_type=AGENT,
            jti=_text(claims.get("jti")),
            expires_at=float(claims["exp"]),
        )


class _OtherAudience(Unauthorized):
    """A token signed by the right key for another audience (a user token where a
    capability was wanted, or the other way round)."""


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
