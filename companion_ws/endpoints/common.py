"""What every HTTP endpoint shares: the caller's principal, JSON bodies and error replies."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from companion_ws import connlog
from companion_ws.auth.tokens import Principal, TokenService
from companion_ws.hub.node import Node
from companion_ws.protocol.codec import JSON_ERRORS, decode_body, encode
from companion_ws.protocol.errors import (
    BadRequest,
    CompanionError,
    Internal,
    InvalidJSON,
    Unauthorized,
)
from companion_ws.settings import Settings


class JSON(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return encode(content)


def node_of(request: Request) -> Node:
    """The node's services (``sessions``, ``state``, ``recovery``, ``tools``...)."""
    node: Node = request.app.state.node
    return node


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def tokens_of(request: Request) -> TokenService:
    tokens: TokenService = request.app.state.tokens
    return tokens


def principal(request: Request) -> Principal:
    """The caller, from ``Authorization: Bearer``. Scoped tokens (join, reconnect) are
    for WebSockets only, except that a reconnect token may read its own session."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send Authorization: Bearer <token>")
    who = tokens_of(request).verify(token.strip())
    if who.is_join:
        raise Unauthorized("a join token only opens a WebSocket")
    return who


async def json_body(request: Request, *, optional: bool = False) -> Any:
    """The request's JSON body: at most ``COMPANION_MAX_BODY_BYTES`` (the BodyLimit
    middleware answers 413 past it) and nested at most 64 levels deep (else 400).
    ``optional``: an empty body is ``None``; a body must then be a JSON object."""
    body = await request.body()
    if not body:
        if optional:
            return None
        raise BadRequest("a JSON body is required")
    try:
        value = decode_body(body)
    except JSON_ERRORS:
        raise InvalidJSON("the body is not valid JSON") from None
    if optional and not isinstance(value, dict):
        raise BadRequest("the body must be a JSON object")
    return value


#: The largest integer a query parameter takes: what every database's BIGINT holds.
MAX_INT = 2**62


def int_param(request: Request, name: str, default: int, *, lo: int = 0, hi: int = MAX_INT) -> int:
    """An integer query parameter in ``[lo, hi]``, ``default`` when absent."""
    raw = request.query_params.get(name)
    if raw is None:
        return default
    if not (raw.isascii() and raw.lstrip("-").isdigit()) or len(raw) > 20:
        raise BadRequest(f"{name} must be an integer")
    value = int(raw)
    if value < lo or value > hi:
        raise BadRequest(f"{name} must be between {lo} and {hi}")
    return value


Endpoint = Callable[[Request], Awaitable[Response]]


def route(path: str, **handlers: Endpoint) -> Route:
    """One route per path that dispatches on the method (``GET=...``, ``POST=...``), so
    a 405 lists every method the path allows."""

    async def dispatch(request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        return await handlers[method](request)

    return Route(path, dispatch, methods=list(handlers))


def log_error(request: Request, status: int, code: str) -> None:
    """The ``http_error`` line: status, code, method and path (never the query)."""
    connlog.http_error(request.method, request.url.path, status, code)


async def http_error_response(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 in the same JSON shape as ours."""
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    log_error(request, exc.status_code, code)
    return JSON(
        {"error": {"code": code, "message": str(exc.detail)}},
        status_code=exc.status_code,
        headers=exc.headers,
    )


async def internal_error_response(request: Request, exc: Exception) -> Response:
    """A bug: the same JSON shape as every other error (Starlette still logs it)."""
    log_error(request, 500, Internal.code)
    return JSON({"error": Internal().payload()}, status_code=500)


async def error_response(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, CompanionError)
    log_error(request, exc.http_status, exc.code)
    headers = {"WWW-Authenticate": "Bearer"} if exc.http_status == 401 else None
    return JSON({"error": exc.payload()}, status_code=exc.http_status, headers=headers)
