"""The ``/sessions`` API (PROTOCOL.md section 7). Each route checks the caller, then
takes the node's path, the same as a socket command."""

from __future__ import annotations

import io
from typing import Any

import segno
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from companion_ws.auth import policy
from companion_ws.endpoints.common import JSON, int_param, json_body, node_of, principal
from companion_ws.errors import BadRequest, Forbidden, SessionEnded
from companion_ws.hub.node import Node
from companion_ws.store.models import SessionRow


async def _info(node: Node, row: SessionRow) -> dict[str, Any]:
    live = row.ended_at is None
    connections = len(await node.broker.presence.members(row.id)) if live else 0
    return {
        "session_id": row.id,
        "owner_id": row.owner_id,
        "created_at": row.created_at,
        "last_activity_at": row.last_activity_at,
        "expires_at": row.expires_at,
        "ended_at": row.ended_at,
        "end_reason": row.end_reason,
        "active": live,
        "connections": connections,
        "seq": row.last_seq,
        "state_version": row.state_version,
    }


async def create_session(request: Request) -> Response:
    who = principal(request)
    if not policy.can_create_sessions(who):
        raise Forbidden("this token is scoped to one session and cannot create others")
    node = node_of(request)
    row = await node.create_session(who.sub)
    return JSON(await _info(node, row), status_code=201)


async def list_sessions(request: Request) -> Response:
    who = principal(request)
    policy.require_admin(who)
    node = node_of(request)
    limit = int_param(request, "limit", 50, lo=1, hi=500)
    active_raw = request.query_params.get("active")
    if active_raw not in (None, "", "true", "false"):
        raise BadRequest("active must be true or false")
    await node.eventlog.flush()
    async with node.store.uow() as uow:
        rows = await uow.sessions.page(
            limit=limit + 1,
            after_id=request.query_params.get("cursor") or None,
            owner_id=request.query_params.get("owner") or None,
            active=None if not active_raw else active_raw == "true",
        )
    page = list(rows[:limit])
    return JSON(
        {
            "sessions": [await _info(node, row) for row in page],
            "next_cursor": page[-1].id if len(rows) > limit else None,
        }
    )


async def get_session(request: Request) -> Response:
    node = node_of(request)
    sid = request.path_params["session_id"]
    who = principal(request)
    await node.eventlog.flush()
    row = await node.authorize(who, sid)
    info = await _info(node, row)
    doc = await node.load_state(sid)
    info["state"] = doc.state
    info["clients"] = await node.broker.presence.members(sid) if row.ended_at is None else []
    return JSON(info)


async def delete_session(request: Request) -> Response:
    node = node_of(request)
    sid = request.path_params["session_id"]
    await node.authorize(principal(request), sid)
    ended = await node.end_session(sid, reason="ended")
    return JSON({"session_id": sid, "ended": True, "already_ended": not ended})


async def get_state(request: Request) -> Response:
    node = node_of(request)
    sid = request.path_params["session_id"]
    await node.authorize(principal(request), sid)
    doc = await node.load_state(sid)
    return JSON({"state": doc.state, "version": doc.version}, headers={"ETag": f'"{doc.version}"'})


def _if_match(request: Request) -> int | None:
    raw = request.headers.get("if-match")
    if raw is None:
        return None
    value = raw.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise BadRequest("If-Match must be the state version, e.g. If-Match: 7")
    return int(value)


async def patch_state(request: Request) -> Response:
    node = node_of(request)
    sid = request.path_params["session_id"]
    row = await node.authorize(principal(request), sid)
    if row.ended_at is not None:
        raise SessionEnded("this session has ended")
    patch = await json_body(request)
    doc = await node.update_state(sid, patch, expected_version=_if_match(request), sender="http")
    return JSON({"state": doc.state, "version": doc.version}, headers={"ETag": f'"{doc.version}"'})


async def publish_event(request: Request) -> Response:
    """A backend publishes a ``contextual_update`` into the session; answers its seq."""
    node = node_of(request)
    sid = request.path_params["session_id"]
    who = principal(request)
    row = await node.get_live(sid)
    if row is None:
        raise SessionEnded("no live session with this id")
    if not policy.can_publish(who, sid, row.owner_id):
        raise Forbidden("only the owner, an admin or a service may publish here")
    body = await json_body(request)
    if not isinstance(body, dict) or not isinstance(body.get("text"), str) or not body["text"]:
        raise BadRequest("the body must be an object with a non-empty string `text`")
    unknown = set(body) - {"text", "data", "sender"}
    if unknown:
        raise BadRequest(f"unknown fields: {', '.join(sorted(unknown))}")
    sender = body.get("sender") or f"backend:{who.sub}"
    event = await node.publish(
        sid, "contextual_update", text=body["text"], data=body.get("data"), sender=str(sender)
    )
    return JSON({"session_id": sid, "seq": event.seq, "epoch": event.epoch}, status_code=201)


async def get_history(request: Request) -> Response:
    node = node_of(request)
    sid = request.path_params["session_id"]
    await node.authorize(principal(request), sid)
    after = int_param(request, "after_seq", 0)
    limit = int_param(request, "limit", 100, lo=1, hi=1000)
    return JSON({"session_id": sid, **await node.history(sid, after, limit)})


def _join_url(request: Request, token: str) -> str:
    base = node_of(request).settings.public_url or str(request.base_url)
    return f"{base.rstrip('/')}/join?token={token}"


async def join_token(request: Request) -> Response:
    node = node_of(request)
    sid = request.path_params["session_id"]
    issued = await node.issue_join_token(principal(request), sid)
    return JSON(
        {**issued, "session_id": sid, "join_url": _join_url(request, issued["join_token"])},
        status_code=201,
        headers={"Cache-Control": "no-store"},
    )


async def qr_svg(request: Request) -> Response:
    """A fresh join link as a QR code (each drawing issues a new one-time token)."""
    node = node_of(request)
    sid = request.path_params["session_id"]
    issued = await node.issue_join_token(principal(request), sid)
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
    Route("/sessions", create_session, methods=["POST"]),
    Route("/sessions", list_sessions, methods=["GET"]),
    Route("/sessions/{session_id}", get_session, methods=["GET"]),
    Route("/sessions/{session_id}", delete_session, methods=["DELETE"]),
    Route("/sessions/{session_id}/state", get_state, methods=["GET"]),
    Route("/sessions/{session_id}/state", patch_state, methods=["PATCH"]),
    Route("/sessions/{session_id}/events", publish_event, methods=["POST"]),
    Route("/sessions/{session_id}/history", get_history, methods=["GET"]),
    Route("/sessions/{session_id}/join-token", join_token, methods=["POST"]),
    Route("/sessions/{session_id}/qr.svg", qr_svg, methods=["GET"]),
]
