"""ElevenLabs' HTTP calls into the hub (docs/protocol.md section 7).

``POST /elevenlabs/tools/{tool_name}``  an ElevenLabs *server* (webhook) tool: the same
    tool path as ``client_tool_call`` (``Node.call_tool``), authorized by a shared secret
    in ``Authorization: Bearer <secret>`` or ``X-Companion-Tool-Secret: <secret>``.
``POST /elevenlabs/post-call``  the post-call webhook, signed with ``ElevenLabs-Signature:
    t=<unix>,v0=<hex HMAC-SHA256(secret, "<t>.<raw body>")>``: the conversation's outcome
    is published into the session (a ``contextual_update``), so it is broadcast and kept
    in the session's history.

Both routes answer 404 while their secret is not configured (the feature is off).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
import uuid
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from companion_ws.endpoints.common import (
    JSON,
    json_body,
    log_error,
    node_of,
    settings_of,
    tokens_of,
)
from companion_ws.protocol.codec import JSON_ERRORS, decode_body, decode_json
from companion_ws.protocol.errors import (
    BadRequest,
    InvalidJSON,
    NotFound,
    SessionEnded,
    SessionMismatch,
    ToolFailed,
    ToolNotFound,
    Unauthorized,
)
from companion_ws.tools.registry import ToolOutcome
from ui_state import StateDoc

log = logging.getLogger("companion_ws.elevenlabs")

TOOL_SECRET_HEADER = "x-companion-tool-secret"
SIGNATURE_HEADER = "elevenlabs-signature"
#: How far in the future a webhook timestamp may be (clock skew), in seconds.
FUTURE_TOLERANCE = 300.0
#: Who published the events these routes cause (the bridge does not echo them to the agent).
SERVER_TOOL_SENDER = "elevenlabs:server-tool"
POST_CALL_SENDER = "elevenlabs:post-call"
#: The post-call webhook's name in the once-per-key ledger.
POST_CALL_TOOL = "elevenlabs.post_call"
_SUMMARY_MAX = 4000


# ---------------------------------------------------------------- server tools


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode(), expected.encode())


def check_tool_secret(headers: Mapping[str, str], secret: str) -> None:
    """The request carries the shared secret, or :class:`Unauthorized`."""
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    candidates = [headers.get(TOOL_SECRET_HEADER, "")]
    if scheme.lower() == "bearer":
        candidates.append(credentials.strip())
    # Compare every candidate, so the time taken does not say which header was close.
    matched = [_same(c, secret) for c in candidates if c]
    if not any(matched):
        raise Unauthorized(
            "send the tool secret as Authorization: Bearer <secret> or X-Companion-Tool-Secret"
        )


def _tool_call_id(body: Mapping[str, Any], headers: Mapping[str, str]) -> str:
    """From the body's ``tool_call_id`` or the ``Idempotency-Key`` header; a fresh id
    (no idempotency) when there is neither."""
    from_body = body.get("tool_call_id")
    from_header = headers.get("idempotency-key", "").strip() or None
    if from_body is not None and not isinstance(from_body, str):
        raise BadRequest("tool_call_id must be a string")
    if from_body and from_header and from_body != from_header:
        raise BadRequest("tool_call_id and the Idempotency-Key header differ")
    chosen = from_body or from_header or f"srv_{uuid.uuid4().hex}"
    if len(chosen) > 200 or not (chosen.isascii() and chosen.isprintable()):
        raise BadRequest("tool_call_id / Idempotency-Key must be at most 200 printable ASCII")
    return chosen


async def server_tool(request: Request) -> Response:
    node = node_of(request)
    secret = settings_of(request).elevenlabs_tool_secret
    if not secret:
        raise NotFound("server tools are disabled: set COMPANION_ELEVENLABS_TOOL_SECRET")
    check_tool_secret(request.headers, secret)
    tool_name = request.path_params["tool_name"]
    if not node.tools.knows(tool_name):
        raise ToolNotFound(f"no tool named {tool_name!r}")
    body = await json_body(request)
    if not isinstance(body, dict):
        raise BadRequest("the body must be a JSON object of the tool's parameters")
    capability = body.get("session_id")
    if not isinstance(capability, str) or not capability:
        raise BadRequest(
            "session_id is missing: bind the tool's session_id parameter to the "
            "session_id dynamic variable"
        )
    # The dynamic variable is chosen by whoever starts the conversation: only the
    # capability the hub signed for a session names one (docs/protocol.md section 11).
    sid = tokens_of(request).verify_capability(capability).session_scope
    assert sid is not None
    tool_call_id = _tool_call_id(body, request.headers)
    if await node.sessions.get_live(sid) is None:
        raise SessionEnded(f"no live session {sid!r}")
    parameters = {k: v for k, v in body.items() if k != "tool_call_id"}
    outcome = await node.tools.call(
        sid, tool_name, tool_call_id, parameters, sender=SERVER_TOOL_SENDER
    )
    headers = {
        "X-Tool-Call-Id": outcome.tool_call_id,
        "X-Tool-Call-Replayed": "true" if outcome.replayed else "false",
        "Cache-Control": "no-store",
    }
    if not outcome.is_error:
        # The tool's result as is: what the agent's LLM sees.
        return Response(outcome.result, media_type="application/json", headers=headers)
    message = _error_message(outcome.result)
    failed = ToolFailed(message)
    log_error(request, failed.http_status, failed.code)
    return JSON({"error": failed.payload()}, status_code=failed.http_status, headers=headers)


def _error_message(result: str) -> str:
    try:
        parsed = decode_json(result)
    except JSON_ERRORS:
        return result
    if isinstance(parsed, dict) and isinstance(parsed.get("error"), str):
        return str(parsed["error"])
    return result


# ---------------------------------------------------------------- post-call webhook


def verify_signature(
    header: str | None,
    raw_body: bytes,
    secret: str,
    *,
    tolerance: float,
    now: float | None = None,
    future_tolerance: float = FUTURE_TOLERANCE,
) -> None:
    """Check an ``ElevenLabs-Signature`` header, or raise :class:`Unauthorized`: missing
    or malformed, a timestamp older than ``tolerance`` seconds or more than
    ``future_tolerance`` seconds ahead, or no ``v0`` digest matching (compared in
    constant time)."""
    if not header:
        raise Unauthorized("the ElevenLabs-Signature header is missing")
    timestamp: str | None = None
    digests: list[str] = []
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "t":
            timestamp = value.strip()
        elif key == "v0":
            digests.append(value.strip())
    if timestamp is None or not (timestamp.isascii() and timestamp.isdigit()) or not digests:
        raise Unauthorized("the ElevenLabs-Signature header is malformed")
    current = time.time() if now is None else now
    age = current - int(timestamp)
    if age > tolerance:
        raise Unauthorized("the webhook's timestamp is too old")
    if -age > future_tolerance:
        raise Unauthorized("the webhook's timestamp is in the future")
    expected = hmac.new(
        secret.encode(), timestamp.encode() + b"." + raw_body, hashlib.sha256
    ).hexdigest()
    if not any(hmac.compare_digest(expected.encode(), d.encode()) for d in digests):
        raise Unauthorized("the webhook's signature does not match")


def sign(raw_body: bytes, secret: str, timestamp: int | None = None) -> str:
    """An ``ElevenLabs-Signature`` header value for ``raw_body`` (tests, local tools)."""
    t = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), t.encode() + b"." + raw_body, hashlib.sha256).hexdigest()
    return f"t={t},v0={digest}"


def _get(obj: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(obj, Mapping):
            return None
        obj = obj.get(key)
    return obj


def conversation_outcome(payload: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The ``contextual_update`` (text, data) a post-call payload becomes, or ``None``
    for the kinds that are not stored (``post_call_audio``: the recording stays with
    ElevenLabs)."""
    kind = payload.get("type")
    data = payload.get("data")
    if not isinstance(data, Mapping):
        return None
    common: dict[str, Any] = {
        "conversation_id": data.get("conversation_id"),
        "agent_id": data.get("agent_id"),
        "event_timestamp": payload.get("event_timestamp"),
    }
    if kind == "post_call_transcription":
        summary = _get(data, "analysis", "transcript_summary")
        transcript = data.get("transcript")
        outcome = {
            **common,
            "status": data.get("status"),
            "transcript_summary": summary[:_SUMMARY_MAX] if isinstance(summary, str) else None,
            "call_successful": _get(data, "analysis", "call_successful"),
            "call_duration_secs": _get(data, "metadata", "call_duration_secs"),
            "termination_reason": _get(data, "metadata", "termination_reason"),
            "turns": len(transcript) if isinstance(transcript, list) else None,
        }
        return "conversation_ended", {k: v for k, v in outcome.items() if v is not None}
    if kind == "call_initiation_failure":
        outcome = {**common, "failure_reason": data.get("failure_reason")}
        return "conversation_failed", {k: v for k, v in outcome.items() if v is not None}
    return None


def post_call_key(kind: str, conversation: str, raw_body: bytes) -> str:
    """The ledger key that applies a signed post-call body at most once (docs/protocol.md
    section 7, v1.2): its kind and conversation id, so that every delivery of one
    conversation's outcome is one; without a conversation id, the SHA-256 of the signed
    body itself, so that a replay of the same bytes is recognised. The two kinds of key
    never meet: a conversation key has ``:`` after the kind, a body key ``/``."""
    if conversation:
        return f"elevenlabs:{kind}:{conversation}"
    return f"elevenlabs:{kind}/body:{hashlib.sha256(raw_body).hexdigest()}"


async def post_call(request: Request) -> Response:
    node = node_of(request)
    settings = settings_of(request)
    secret = settings.elevenlabs_webhook_secret
    if not secret:
        raise NotFound("the post-call webhook is disabled: set COMPANION_ELEVENLABS_WEBHOOK_SECRET")
    raw = await request.body()
    verify_signature(
        request.headers.get(SIGNATURE_HEADER),
        raw,
        secret,
        tolerance=settings.webhook_tolerance,
    )
    try:
        payload = decode_body(raw)
    except JSON_ERRORS:
        raise InvalidJSON("the body is not valid JSON") from None
    if not isinstance(payload, dict):
        raise BadRequest("the body must be a JSON object")
    # Unknown sessions and kinds still answer 200: ElevenLabs disables a webhook that
    # keeps failing, and a retry would not make them known.
    variables = _get(payload, "data", "conversation_initiation_client_data", "dynamic_variables")
    capability = variables.get("session_id") if isinstance(variables, Mapping) else None
    outcome = conversation_outcome(payload)
    if outcome is None:
        return JSON({"stored": False, "note": f"{payload.get('type')!r} is not stored"})
    if not isinstance(capability, str) or not capability:
        return JSON({"stored": False, "note": "no session_id dynamic variable in this call"})
    try:
        sid = tokens_of(request).verify_capability(capability).session_scope
    except Unauthorized as exc:
        return JSON({"stored": False, "note": exc.message})
    assert sid is not None
    if await node.sessions.get(sid) is None:
        log.info("post-call webhook for unknown session %s ignored", sid)
        return JSON({"stored": False, "note": "no such session"})
    text, data = outcome
    conversation = str(data.get("conversation_id") or "")[:120]

    async def effect(doc: StateDoc) -> ToolOutcome:
        # The outcome goes into the state with the ledger row (one commit), so a
        # redelivery after a crash at any point has exactly one effect.
        patch = {"conversations": {conversation: data}} if conversation else None
        return ToolOutcome({"session_id": sid}, patch=patch, update_text=text, update_data=data)

    key = post_call_key(str(payload.get("type")), conversation, raw)
    try:
        result = await node.tools.once(sid, key, POST_CALL_TOOL, effect, sender=POST_CALL_SENDER)
    except SessionMismatch:
        return JSON({"stored": False, "note": "this conversation belongs to another session"})
    if result.replayed:
        return JSON({"stored": False, "duplicate": True, **decode_json(result.result)})
    seq = result.events[-1].seq if result.events else None
    return JSON({"stored": True, "session_id": sid, "seq": seq})


routes = [
    Route("/elevenlabs/tools/{tool_name}", server_tool, methods=["POST"]),
    Route("/elevenlabs/post-call", post_call, methods=["POST"]),
]
