"""Where and as whom the client connects: the hub's ``/ws`` URL and the token to use."""

from __future__ import annotations

import base64
import inspect
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode, urlsplit, urlunsplit

import msgspec

from companion_ws.client.mirror import Position

__all__ = ["TokenSource", "current_token", "is_join_token", "ws_base", "ws_url"]

TokenSource = str | Callable[[], str | Awaitable[str]]

_decode = msgspec.json.Decoder().decode


def ws_base(url: str) -> str:
    """``ws://host:port`` (or http/https, or a URL ending in /ws) -> ``ws://host:port/ws``."""
    parts = urlsplit(url)
    scheme = {"http": "ws", "https": "wss"}.get(parts.scheme, parts.scheme)
    if scheme not in ("ws", "wss"):
        raise ValueError(f"not a ws:// or http:// URL: {url!r}")
    path = parts.path.rstrip("/")
    if not path.endswith("/ws"):
        path += "/ws"
    return urlunsplit((scheme, parts.netloc, path, "", ""))


def ws_url(base: str, query: dict[str, str]) -> str:
    return f"{base}?{urlencode(query)}"


def connect_url(base: str, client: str, session_id: str | None, resume: Position | None) -> str:
    """The URL of the next connect: the client's kind, its session, and where it left
    off (``last_seq``/``epoch``, when the mirror asks the hub to replay)."""
    query: dict[str, str] = {"client": client}
    if session_id is not None:
        query["session_id"] = session_id
    if resume is not None:
        query["last_seq"] = str(resume.last_seq)
        query["epoch"] = resume.epoch
    return ws_url(base, query)


async def current_token(source: TokenSource, reconnect_token: str | None) -> str:
    """The token for the next connect: the source's, unless it is a one-time join token
    already spent, in which case the welcome's ``reconnect_token``."""
    value = source if isinstance(source, str) else source()
    if inspect.isawaitable(value):
        value = await value
    token = str(value)
    if reconnect_token is not None and is_join_token(token):
        return reconnect_token  # the join token was good for one connect only
    return token


async def renewal_token(source: TokenSource, reconnect_token: str | None) -> str | None:
    """The token to renew an open connection with (docs/protocol.md section 12): the
    source's when it is a callable; else a joined device's own token, which may renew
    itself; else None: a user's reconnect token may not (it never outlives the login it
    came from), so the connection ends with its credential."""
    if callable(source):
        return await current_token(source, reconnect_token)
    if reconnect_token is not None and is_device_token(reconnect_token):
        return reconnect_token
    return None


def is_join_token(token: str) -> bool:
    """A one-time join token: a join code (not a JWT: no dots), or a JWT with
    ``typ: join``."""
    return len(token.split(".")) != 3 or _token_type(token) == "join"


def is_device_token(token: str) -> bool:
    """A joined device's token (``typ: device``), which may renew itself with
    ``refresh``; a user's reconnect token may not (docs/protocol.md section 12)."""
    return _token_type(token) == "device"


def _token_type(token: str) -> object:
    """A JWT's ``typ`` claim, read without verifying it (the hub verifies)."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = _decode(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, msgspec.DecodeError):
        return None
    return claims.get("typ") if isinstance(claims, dict) else None
