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

    def cached(self, kid: str, *, live: bool = False) -> jwt.PyJWK | None:
        """The signing key ``kid`` from the last set fetched (``live``: only while within
        its lifespan); never fetches. A set past its lifespan still verifies until a
        fetch replaces it, so an identity provider that is down for a while does not
        lock everyone out; a key it has dropped stops verifying at the next fetch."""
        cache = self._client.jwk_set_cache
        held = cache.jwk_set_with_timestamp if cache is not None else None
        if held is None or (live and cache is not None and cache.is_expired()):
            return None
        for key in held.get_jwk_set().keys:
            if key.key_id == kid and key.public_key_use in ("sig", None):
                return key
        return None

    def wants_fetch(self, token: str) -> bool:
        """Whether ``token`` needs the set fetched first: its key is not in a live set
        (an unknown ``kid``, or the set's lifespan has passed), and the cooldown since
        the last attempt, successful or not, has passed: one fetch per cooldown at most,
        whatever the tokens say and whether the provider answers or not."""
        kid = token_kid(token)
        if kid is None:
            return False
        if self._tried_at is not None and self._clock() - self._tried_at < self._cooldown:
            return False
        return self.cached(kid, live=True) is None

    async def ensure(self, token: str | None) -> None:
        """Fetch the set in a thread if ``token`` needs it (an unknown ``kid``, rate-limited,
        or an expired set); a failed fetch is logged and the token then refused."""
        if token and self.wants_fetch(token):
            self._tried_at = self._clock()  # before the thread: a burst starts one fetch
            await asyncio.to_thread(self._fetch, token_kid(token) or "")

    async def prefetch(self) -> None:
        """The set at start, so the first connects need no fetch."""
        self._tried_at = self._clock()
        await asyncio.to_thread(self._fetch, None)

    def _fetch(self, kid: str | None) -> None:
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
