"""The doors' wait for an identity provider's keys (``COMPANION_JWT_JWKS_URL``): before a
request or an upgrade reaches the code that verifies its token, the JWKS is fetched off
the event loop if the token needs it (docs/protocol.md section 8). Without a JWKS URL
the hub runs without this layer."""

from __future__ import annotations

from typing import Any, TypeVar, cast

from starlette.types import ASGIApp, Receive, Scope, Send

from companion_ws.auth.tokens import TokenService
from companion_ws.endpoints.ws import extract_token

__all__ = ["KeyGate", "with_key_gate"]


class KeyGate:
    """ASGI: ``await tokens.ensure_key(token)``, then the app."""

    def __init__(self, app: ASGIApp, tokens: TokenService) -> None:
        self.app = app
        self._tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            token, _ = extract_token(scope)
            await self._tokens.ensure_key(token)
        await self.app(scope, receive, send)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)  # the wrapped server's attributes (fallback, ...)


App = TypeVar("App")


def with_key_gate(app: App, tokens: TokenService) -> App:
    """``app`` behind a :class:`KeyGate` when the tokens come from a JWKS, else ``app``
    (the gate passes attribute reads through to it)."""
    return app if tokens.jwks is None else cast(App, KeyGate(cast(ASGIApp, app), tokens))
