"""The credential in the WebSocket handshake, out of the URL (docs/protocol.md section 1).

A client offers two subprotocols in ``Sec-WebSocket-Protocol``: ``companion.v1`` and
``bearer.<token>``, as Kubernetes carries its bearer token
(``base64url.bearer.authorization.k8s.io.<token>``). Browsers cannot set any other
header on a WebSocket, proxies do not log this one, and the hub answers with
``companion.v1`` alone: the token is never echoed.

A subprotocol is an HTTP ``token`` (RFC 6455 section 4.1, RFC 7230 section 3.2.6):
``!#$%&'*+-.^_`|~``, digits and letters. A JWT (base64url segments joined by dots) and
a join code (base64url) are made of those; a token that is not (a standard-base64
opaque token with ``/`` or ``=``) cannot travel this way, and clients fall back to
``Authorization: Bearer`` (or, in a browser, ``?token=``).
"""

from __future__ import annotations

import re

__all__ = ["BEARER_PREFIX", "SUBPROTOCOL", "fits_subprotocol", "offer", "token_from"]

SUBPROTOCOL = "companion.v1"
BEARER_PREFIX = "bearer."

_TCHARS = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def fits_subprotocol(token: str) -> bool:
    """Whether ``bearer.<token>`` is a valid subprotocol value."""
    return _TCHARS.fullmatch(token) is not None


def offer(token: str | None) -> list[str]:
    """The subprotocols a client offers: ``companion.v1``, and the token when it fits."""
    if token and fits_subprotocol(token):
        return [SUBPROTOCOL, BEARER_PREFIX + token]
    return [SUBPROTOCOL]


def token_from(subprotocols: list[str]) -> str | None:
    """The token offered as ``bearer.<token>``, if any (the last one wins, as with
    ``?token=``)."""
    found = None
    for value in subprotocols:
        if value.startswith(BEARER_PREFIX) and len(value) > len(BEARER_PREFIX):
            found = value[len(BEARER_PREFIX) :]
    return found
