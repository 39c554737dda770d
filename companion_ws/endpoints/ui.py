"""The companion UI: one page at / and /join, its assets under /static."""

from __future__ import annotations

import functools
import mimetypes
import os
from os import PathLike
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from companion_ws.endpoints.common import settings_of
from companion_ws.endpoints.talk import conversation_origin
from companion_ws.settings import Settings

STATIC = Path(__file__).resolve().parent.parent / "static"


#: Every page (docs/protocol.md section 16): scripts and styles from the hub only, never
#: inline or from a third party; the page may not be framed; the one-time join codes
#: in its URL never leave in a Referer.
#:
#: Talking from the page (section 14) adds one origin to ``connect-src``: the WebSocket
#: origin of ``COMPANION_ELEVENLABS_BASE_URL`` (``wss://api.elevenlabs.io`` by default),
#: where the official client opens the signed conversation; only when the hub is set
#: up for it. Nothing else changes: the client is served by the hub (``script-src
#: 'self'``), and the page hands it the paths of its AudioWorklet modules and resampler
#: (``workletPaths``, ``libsampleratePath``), also served by the hub, so it never falls
#: back to ``blob:``/``data:`` module URLs or a CDN; an AudioWorklet module is a script
#: (``script-src``), and no Worker is started (no ``worker-src``); no ``eval``
#: (checked when the bundle is made).
def content_security_policy(talk_origin: str | None = None) -> str:
    connect = "connect-src 'self'" + (f" {talk_origin}" if talk_origin else "")
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' blob: data:",
            connect,
            "object-src 'none'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    )


CONTENT_SECURITY_POLICY = content_security_policy()
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}


def page_headers(settings: Settings) -> dict[str, str]:
    """The companion page's headers: :data:`PAGE_HEADERS`, with the ElevenLabs origin
    the page may talk to when the hub is set up for it."""
    if not settings.talk_configured:
        return PAGE_HEADERS
    origin = conversation_origin(settings.elevenlabs_base_url)
    return {**PAGE_HEADERS, "Content-Security-Policy": content_security_policy(origin)}


#: Whether the hub can sign a conversation for the page (section 14), in the page itself,
#: so that a hub without ElevenLabs settings shows no "Talk to the agent" at all.
TALK_OFF = '<meta name="companion-talk" content="off">'
TALK_ON = '<meta name="companion-talk" content="on">'


@functools.cache
def _index(talk: bool) -> str:
    text = (STATIC / "index.html").read_text()
    assert TALK_OFF in text, "index.html lost its companion-talk meta tag"
    return text.replace(TALK_OFF, TALK_ON) if talk else text


async def page(request: Request) -> Response:
    settings = settings_of(request)
    return HTMLResponse(_index(settings.talk_configured), headers=page_headers(settings))


class _Assets(StaticFiles):
    """The page's modules import each other without cache-busting names: revalidate.
    An HTML file is a page (section 16, v1.2): it carries the page's headers, as ``/``."""

    def file_response(
        self,
        full_path: PathLike[str] | str,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        if mimetypes.guess_type(full_path)[0] == "text/html":
            response.headers.update(page_headers(settings_of(Request(scope))))
        return response


routes = [
    Route("/", page),
    Route("/join", page),
    Mount("/static", app=_Assets(directory=STATIC, check_dir=False), name="static"),
]
