"""Talking from the page (docs/protocol.md section 14).

``POST /sessions/{id}/elevenlabs/conversation`` (owner, admin): a signed URL for one
voice conversation with the configured agent, fetched from ElevenLabs' signed-URL API
with the official SDK, and what the page needs to start it with the official browser
client: the ``session_id`` dynamic variable (the session's agent capability, as the
bridge passes it) and the tools to register as client tools.

The API key stays here: it goes to ElevenLabs in the ``xi-api-key`` header of one HTTPS
request and nowhere else (not in an answer, an error or a log line). Without
``COMPANION_ELEVENLABS_AGENT_ID`` and ``COMPANION_ELEVENLABS_API_KEY`` the route answers
503 ``not_configured``.
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from companion_ws.auth.policy import Action
from companion_ws.endpoints.common import JSON, node_of, principal, settings_of, tokens_of
from companion_ws.protocol.errors import NotConfigured, SessionEnded, UpstreamFailed
from companion_ws.settings import Settings
from companion_ws.tools.registry import ToolRegistry

__all__ = ["conversation_origin", "routes"]

log = logging.getLogger("companion_ws.talk")

#: How long the hub waits for ElevenLabs' signed-URL API.
SIGNED_URL_TIMEOUT = 10.0


def conversation_origin(base_url: str) -> str:
    """The WebSocket origin of the conversations an ElevenLabs API serves (``https://h``
    -> ``wss://h``): what the page's CSP lets it connect to, and what a signed URL must
    name."""
    parts = urlsplit(base_url)
    scheme = {"https": "wss", "http": "ws"}.get(parts.scheme, parts.scheme)
    return f"{scheme}://{parts.netloc}"


def _origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _tools(registry: ToolRegistry) -> list[dict[str, Any]]:
    """The page registers each as a client tool that runs through its hub socket."""
    out = []
    for t in registry:
        definition = t.elevenlabs_definition()
        out.append(
            {
                "name": t.name,
                "description": t.description,
                "response_timeout_secs": definition["response_timeout_secs"],
            }
        )
    return out


async def signed_url(settings: Settings) -> str:
    """A signed conversation URL from ElevenLabs' API, or :class:`UpstreamFailed`."""
    # Imported here, not with the module: the SDK takes ~0.4 s to import, and every
    # start of the hub would pay it for an endpoint that few deployments configure.
    from elevenlabs.client import AsyncElevenLabs
    from elevenlabs.core.api_error import ApiError

    assert settings.elevenlabs_agent_id and settings.elevenlabs_api_key
    async with httpx.AsyncClient(timeout=SIGNED_URL_TIMEOUT) as http:
        # The API key is always passed: the SDK's default reads the environment.
        client = AsyncElevenLabs(
            api_key=settings.elevenlabs_api_key,
            base_url=settings.elevenlabs_base_url.rstrip("/"),
            httpx_client=http,
        )
        try:
            answer = await client.conversational_ai.conversations.get_signed_url(
                agent_id=settings.elevenlabs_agent_id
            )
        except ApiError as exc:
            detail = _status_of(exc.body)
            log.warning("ElevenLabs refused a signed URL: HTTP %s %s", exc.status_code, detail)
            raise UpstreamFailed(
                f"ElevenLabs refused a signed conversation URL (HTTP {exc.status_code}"
                f"{', ' + detail if detail else ''}): check COMPANION_ELEVENLABS_AGENT_ID "
                "and COMPANION_ELEVENLABS_API_KEY"
            ) from None
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("ElevenLabs' signed-URL API did not answer: %s", type(exc).__name__)
            raise UpstreamFailed("ElevenLabs' signed-URL API did not answer; try again") from None
    url = str(answer.signed_url)
    expected = conversation_origin(settings.elevenlabs_base_url)
    if _origin_of(url) != expected:
        # The page's CSP allows only the base URL's origin: say so here, not as a
        # mysterious refused connection in the browser.
        log.warning("the signed URL is not on %s (COMPANION_ELEVENLABS_BASE_URL)", expected)
        raise UpstreamFailed(
            f"ElevenLabs signed a conversation on another origin than {expected}: set "
            "COMPANION_ELEVENLABS_BASE_URL to the API that serves your agent"
        )
    return url


def _status_of(body: Any) -> str:
    """ElevenLabs' short error status (``invalid_api_key``...), never the whole body."""
    detail = body.get("detail") if isinstance(body, dict) else None
    status = detail.get("status") if isinstance(detail, dict) else None
    return status if isinstance(status, str) and len(status) <= 64 else ""


async def start_conversation(request: Request) -> Response:
    node = node_of(request)
    settings = settings_of(request)
    sid = request.path_params["session_id"]
    who = principal(request)
    row = await node.sessions.authorize(who, sid, Action.TALK)
    if row.ended_at is not None:
        raise SessionEnded("this session has ended")
    if not settings.talk_configured:
        raise NotConfigured(
            "talking from the page is off: set COMPANION_ELEVENLABS_AGENT_ID and "
            "COMPANION_ELEVENLABS_API_KEY"
        )
    url = await signed_url(settings)
    ttl = settings.agent_capability_ttl
    # In the caller's name (the owner or an admin): the agent role in this session only.
    capability = tokens_of(request).mint_capability(who.sub, sid, ttl)
    registry: ToolRegistry = request.app.state.tools
    return JSON(
        {
            "session_id": sid,
            "agent_id": settings.elevenlabs_agent_id,
            "signed_url": url,
            "dynamic_variables": {"session_id": capability},
            "capability_expires_at": int((time.time() + ttl) * 1000),
            "tools": _tools(registry),
        },
        headers={"Cache-Control": "no-store"},
    )


routes = [
    Route("/sessions/{session_id}/elevenlabs/conversation", start_conversation, methods=["POST"]),
]
