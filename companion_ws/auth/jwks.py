"""An identity provider's keys from its JWKS URL (``COMPANION_JWT_JWKS_URL``): PyJWT's
:class:`jwt.PyJWKClient` fetches and caches the set, refreshes it when its lifespan has
passed, and refreshes it once for a token whose ``kid`` it does not know, no more often
than the cooldown (docs/protocol.md section 8).

PyJWKClient fetches with blocking I/O, so the fetch never runs on the event loop: every
door awaits :meth:`JwksKeys.ensure` (a thread) before it verifies a token, and the
verification itself (:meth:`JwksKeys.key_for`) reads only the cache. A token whose key is
not in the set after that is refused like any other bad signature.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import jwt

from companion_ws.protocol.errors import Unauthorized

__all__ = ["JwksKeys"]

log = logging.getLogger("companion_ws.auth.jwks")


def token_kid(token: str) -> str | None:
    """The ``kid`` of a JWT's header, unverified; ``None`` when there is none (or the
    token is no JWT). [pure]"""
    if token.count(".") != 2:
        return None
    try:
        kid = jwt.get_unverified_header(token).get("kid")
    except jwt.PyJWTError:
        return None
    return kid if isinstance(kid, str) and kid else None


class JwksKeys:
    """The signing keys published at one JWKS URL."""

    def __init__(
        self,
        url: str,
        *,
        lifespan: float = 300.0,
        cooldown: float = 30.0,
        timeout: float = 10.0,
        clock: Any = time.monotonic,
    ) -> None:
        self.url = url
        self._client = jwt.PyJWKClient(
            url, lifespan=lifespan, cooldown_duration=cooldown, timeout=timeout
        )
        self._cooldown = cooldown
        self._clock = clock
        self._tried_at: float | None = None
        self.fetches = 0  # attempts, for tests and the log

    def cached(self, kid: str) -> jwt.PyJWK | None:
        """The signing key ``kid`` from a set still within its lifespan; never fetches."""
        cache = self._client.jwk_set_cache
        jwk_set = cache.get() if cache is not None else None
        if jwk_set is None:
            return None
        for key in jwk_set.keys:
            if key.key_id == kid and key.public_key_use in ("sig", None):
                return key
        return None

    def wants_fetch(self, token: str) -> bool:
        """Whether ``token`` needs the set fetched first: its key is not in a live set, and
        (when a live set lacks it) the cooldown since the last fetch has passed."""
        kid = token_kid(token)
        if kid is None or self.cached(kid) is not None:
            return False
        cache = self._client.jwk_set_cache
        live = cache is not None and cache.get() is not None
        recent = self._tried_at is not None and self._clock() - self._tried_at < self._cooldown
        return not (live and recent)

    async def ensure(self, token: str | None) -> None:
        """Fetch the set in a thread if ``token`` needs it (an unknown ``kid``, rate-limited,
        or an expired set); a failed fetch is logged and the token then refused."""
        if token and self.wants_fetch(token):
            await asyncio.to_thread(self._fetch, token_kid(token) or "")

    async def prefetch(self) -> None:
        """The set at start, so the first connects need no fetch."""
        await asyncio.to_thread(self._fetch, None)

    def _fetch(self, kid: str | None) -> None:
        self._tried_at = self._clock()
        self.fetches += 1
        try:
            if kid is None:
                self._client.get_signing_keys(refresh=True)
            else:
                self._client.get_signing_key(kid)  # refreshes once for an unknown kid
        except jwt.PyJWKClientError as exc:
            log.warning("JWKS %s: %s", self.url, exc)

    def key_for(self, token: str) -> Any:
        """The verification key for ``token`` from the cached set: :class:`Unauthorized`
        when it names none, or one the set does not have."""
        kid = token_kid(token)
        if kid is None:
            raise Unauthorized("the token is invalid: its header names no key (kid)")
        key = self.cached(kid)
        if key is None:
            raise Unauthorized(f"the token is invalid: no key {kid!r} at the JWKS URL")
        return key.key
