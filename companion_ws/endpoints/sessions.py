"""The ``/sessions`` API (docs/protocol.md section 7). Each route checks the caller, then
takes the node's path, the same as a socket command."""

from __future__ import annotations

import io
import re

import segno
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from companion_ws.auth import policy
from companion_ws.auth.policy import Action, Role
from companion_ws.devtokens import is_loopback
from companion_ws.endpoints.common import (
    JSON,
    int_param,
    json_body,
    node_of,
    principal,
    route,
    settings_of,
)
from companion_ws.hub.recovery import history_fields
from companion_ws.protocol.errors import BadRequest, Forbidden, SessionEnded
from companion_ws.protocol.frames import ContextualUpdate

#: What a session id may be: what the hub makes (hex), with room for other makers.
SESSION_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


async def create_session(request: Request) -> Response:
    who = principal(request)
    if not policy.can_create_sessions(who):
        raise Forbidden("this token is scoped to one session and cannot create others")
    sessions = node_of(request).sessions
    body = await json_body(request, optional=True) or {}
    if "restore_from" not in body:
        row = await sessions.create_for(who)  # within the user's rate of new sessions
    elif isinstance(source := body["restore_from"], str) and SESSION_ID.fullmatch(source):
        row = await sessions.restore(who, source)
    else:
        raise BadRequest("restore_from must be a session id")
    return JSON(await sessions.describe(row), status_code=201)


async def list_sessions(request: Request) -> Response:
    """An admin lists everyone's sessions (``?owner=`` narrows); a user their own."""
    who = principal(request)
    if not policy.can_create_sessions(who):
        raise Forbidden("this token is scoped to one session and cannot list sessions")
    sessions = node_of(request).sessions
    limit = int_param(request, "limit", 50, lo=1, hi=500)
    active_raw = request.query_params.get("active")
    if active_raw not in (None, "true", "false"):
        raise BadRequest("active must be true or false")
    rows, cursor = await sessions.page(
        limit=limit,
        after_id=request.query_params.get("cursor") or None,
        owner_id=(request.query_params.get("owner") or None) if who.is_admin else who.sub,
        active=None if not active_raw else active_raw == "true",
    )
    return JSON({"sessions": [await sessions.describe(row) for row in rows], "next_cursor": cursor})


async def get_session(request: Request) -> Response:
    node = node_of(request)
    sid = request.path_params["session_id"]
    row = await node.sessions.fresh(principal(request), sid)
    info = await node.sessions.describe(row, clients=True)
    info["state"] = (await node.state.load(sid)).state
    return JSON(info)


async def delete_session(request: Request) -> Response:
    sessions = node_of(request).sessions
    sid = request.path_params["session_id"]
    await sessions.authorize(principal(request), sid, Action.END)
    ended = await sessions.end(sid, reason="ended")
    return JSON({"session_id": sid, "ended": True, "already_ended": not ended})


async def get_state(request: Request) -> Response:
    node = node_of(request)
    sid = request.path_params["session_id"]
    await node.sessions.authorize(principal(request), sid)
    doc = await node.state.load(sid)
    return JSON({"state": doc.state, "version": doc.version}, headers={"ETag": f'"{doc.version}"'})


def _if_match(request: Request) -> int | None:
    raw = request.headers.get("if-match")
    if raw is None:
        return None
    value = raw.strip().removeprefix("W/").strip('"')
    if not (value.isascii() and value.isdigit()) or len(value) > 18:
        raise BadRequest("If-Match must be the state version, e.g. If-Match: 7")
    return int(value)


async def patch_state(request: Request) -> Response:
    node = node_of(request)
    sid = request.path_params["session_id"]
    row = await node.sessions.authorize(principal(request), sid, Action.WRITE)
    patch = await json_body(request)  # a bad request is that, whatever the session's state
    expected = _if_match(request)
    if row.ended_at is not None:
        raise SessionEnded("this session has ended")
    doc = await node.state.update(sid, patch, expected_version=expected, sender="http")
    return JSON({"state": doc.state, "version": doc.version}, headers={"ETag": f'"{doc.version}"'})


async def publish_event(request: Request) -> Response:
    """A backend publishes a ``contextual_update`` into the session; answers its seq."""
    node = node_of(request)
    sid = request.path_params["session_id"]
    who = principal(request)
    row = await node.sessions.authorize(who, sid, Action.WRITE)
    body = await json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not body["text"]:
        raise BadRequest("the body must be an object with a non-empty string `text`")
    if "sender" in body:
        raise BadRequest("sender is not yours to choose: it is derived from your credential")
    unknown = set(body) - {"text", "data"}
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(sorted(unknown))}")
    if row.ended_at is not None:
        raise SessionEnded("no live session with this id")
    role = policy.http_role(who, sid, row.owner_id)
    event = await node.publisher.publish(
        ContextualUpdate(
            session_id=sid, text=body["text"], data=body.get("data"), sender=f"{role}:{who.sub}"
        )
    )
    return JSON({"session_id": sid, "seq": event.seq, "epoch": event.epoch}, status_code=201)


async def get_history(request: Request) -> Response:
    node = node_of(request)
    sid = request.path_params["session_id"]
    await node.sessions.authorize(principal(request), sid)
    after = int_param(request, "after_seq", 0)
    limit = int_param(request, "limit", 100, lo=1, hi=1000)
    page = await node.recovery.history(sid, after, limit)
    return JSON({"session_id": sid, **history_fields(page)})


#: ``GET /sessions/{id}/messages``: how many messages one answer holds, by default and at most.
MESSAGES_DEFAULT, MESSAGES_MAX = 200, 1000


async def get_messages(request: Request) -> Response:
    """The conversation (docs/protocol.md section 13), corrections applied, in order of first
    appearance; ``after_seq`` pages on (the last message's ``seq``) while ``has_more``."""
    node = node_of(request)
    sid = request.path_params["session_id"]
    await node.sessions.authorize(principal(request), sid)
    after = int_param(request, "after_seq", 0)
    limit = int_param(request, "limit", MESSAGES_DEFAULT, lo=1, hi=MESSAGES_MAX)
    page = await node.conversation.messages(sid, after_seq=after, limit=limit)
    return JSON({"session_id": sid, "messages": page.messages, "has_more": page.has_more})


def _join_url(request: Request, token: str) -> str:
    """``COMPANION_PUBLIC_URL``, else the address the page used; but never the loopback
    when the hub listens on every interface: a phone scanning it would open itself
    (serve and demo set ``app.state.lan_url`` then, docs/protocol.md section 17)."""
    base = settings_of(request).public_url
    if not base:
        lan = getattr(request.app.state, "lan_url", None)
        local = is_loopback(request.url.hostname or "")
        base = lan if lan and local else str(request.base_url)
    return f"{base.rstrip('/')}/join?token={token}"


async def _join_role(request: Request) -> Role:
    body = await request.body()
    if not body:
        return Role.COMPANION
    parsed = await json_body(request)
    role = parsed.get("role", "companion") if isinstance(parsed, dict) else None
    if role not in ("companion", "observer") or set(parsed) - {"role"}:
        raise BadRequest('the body is optional: {"role": "companion" | "observer"}')
    return Role(role)


async def join_token(request: Request) -> Response:
    node = node_of(request)
    sid = request.path_params["session_id"]
    issued = await node.devices.issue_join_code(principal(request), sid, await _join_role(request))
    return JSON(
        {**issued, "session_id": sid, "join_url": _join_url(request, issued["join_token"])},
        status_code=201,
        headers={"Cache-Control": "no-store"},
    )


async def qr_svg(request: Request) -> Response:
    """A fresh join link as a QR code (each drawing issues a new one-time token)."""
    node = node_of(request)
    sid = request.path_params["session_id"]
    issued = await node.devices.issue_join_code(principal(request), sid)
    url = _join_url(request, issued["join_token"])
    svg = _qr_svg(url)
    return Response(
        svg,
        media_type="image/svg+xml",
        headers={
            "Cache-Control": "no-store",
            "X-Join-Url": url,
            "X-Join-Expires-At": str(issued["expires_at"]),
        },
    )


async def list_devices(request: Request) -> Response:
    sid = request.path_params["session_id"]
    devices = await node_of(request).devices.of_session(principal(request), sid)
    return JSON({"session_id": sid, "devices": devices})


async def revoke_device(request: Request) -> Response:
    sid = request.path_params["session_id"]
    device_id = request.path_params["device_id"]
    await node_of(request).devices.revoke(principal(request), sid, device_id)
    return JSON({"session_id": sid, "device_id": device_id, "revoked": True})


def _qr_svg(url: str) -> bytes:
    """A standalone SVG (xmlns, viewBox) that draws as an <img> and scales to its box."""
    qr = segno.make(url, error="m")
    size = qr.symbol_size(scale=1, border=2)[0]
    buffer = io.BytesIO()
    qr.save(buffer, kind="svg", xmldecl=False, scale=1, border=2, title="Join this session")
    return buffer.getvalue().replace(
        b'class="segno"', f'class="segno" viewBox="0 0 {size} {size}"'.encode(), 1
    )


routes = [
    route("/sessions", POST=create_session, GET=list_sessions),
    route("/sessions/{session_id}", GET=get_session, DELETE=delete_session),
    route("/sessions/{session_id}/state", GET=get_state, PATCH=patch_state),
    Route("/sessions/{session_id}/events", publish_event, methods=["POST"]),
    Route("/sessions/{session_id}/history", get_history, methods=["GET"]),
    Route("/sessions/{session_id}/messages", get_messages, methods=["GET"]),
    Route("/sessions/{session_id}/join-token", join_token, methods=["POST"]),
    Route("/sessions/{session_id}/qr.svg", qr_svg, methods=["GET"]),
    Route("/sessions/{session_id}/devices", list_devices, methods=["GET"]),
    Route("/sessions/{session_id}/devices/{device_id}", revoke_device, methods=["DELETE"]),
]
