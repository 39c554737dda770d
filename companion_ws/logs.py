"""Logging: tokens never reach a log line.

uvicorn's access and WebSocket log lines print the full path with its query string;
:class:`RedactTokens` rewrites ``token=...`` (its name percent-encoded too, as in
``%74oken=``), bearer credentials and anything shaped like a JWT before a message is
formatted, and :class:`RedactingFormatter` does it again on the finished line, so a
token inside a traceback or an exception's text is caught as well.

The hub writes its own line per connection outcome (:mod:`companion_ws.connlog`), so
uvicorn's per-socket lines (``"WebSocket /ws" [accepted]``, ``connection open``,
``connection closed``: printed for refused sockets too) are dropped
(:class:`QuietSockets`), and so are the access lines of static files and health checks
that went well (:class:`QuietAccess`). ``--log-format json`` writes one JSON object per
line (:class:`JsonFormatter`).
"""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any
from urllib.parse import unquote

_SECRET_KEYS = frozenset({"token", "join_token", "reconnect_token", "ticket"})
_PARAM = re.compile(r"((?:^|[?&;\s])([A-Za-z0-9_.%+-]{1,64})=)([^&\s\"']+)")
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.I)
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]+")


def _param(match: re.Match[str]) -> str:
    if unquote(match.group(2)).lower() in _SECRET_KEYS:
        return f"{match.group(1)}[redacted]"
    return match.group(0)


def redact(text: str) -> str:
    """``text`` with every token in it replaced by ``[redacted]``."""
    text = _PARAM.sub(_param, text)
    return _JWT.sub("[redacted]", _BEARER.sub(r"\1[redacted]", text))


class RedactingFormatter(logging.Formatter):
    """The finished line (message, exception and stack) redacted once more."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class RedactTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if record.args:
            args: Any = record.args
            if isinstance(args, dict):
                record.args = {k: redact(v) if isinstance(v, str) else v for k, v in args.items()}
            else:
                record.args = tuple(redact(a) if isinstance(a, str) else a for a in args)
        return True


def log_config(level: str = "info", fmt: str = "text") -> dict[str, Any]:
    """uvicorn's logging config with the redaction filter on every handler, uvicorn's
    per-socket lines and quiet access lines dropped; ``fmt`` is ``text`` or ``json``."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    formatter: dict[str, Any] = (
        {"()": "companion_ws.logs.JsonFormatter"}
        if fmt == "json"
        else {
            "()": "companion_ws.logs.RedactingFormatter",
            "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
        }
    )
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {
            "redact": {"()": "companion_ws.logs.RedactTokens"},
            "quiet_sockets": {"()": "companion_ws.logs.QuietSockets"},
            "quiet_access": {"()": "companion_ws.logs.QuietAccess"},
        },
        "formatters": {"default": formatter},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "default",
                "filters": ["redact"],
                "stream": "ext://sys.stderr",
            },
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": level.upper(), "propagate": False},
            "uvicorn.error": {"level": level.upper(), "filters": ["quiet_sockets"]},
            "uvicorn.access": {
                "handlers": ["default"],
                "level": level.upper(),
                "propagate": False,
                "filters": ["quiet_access"],
            },
            "companion_ws": {"handlers": ["default"], "level": level.upper(), "propagate": False},
        },
    }


#: uvicorn's (and the websockets library's) info lines for every socket: the hub's
#: ``accepted`` / ``refused`` / ``closed`` lines say more, and say it once.
_SOCKET_LINES = frozenset(
    {'%s - "WebSocket %s" [accepted]', "connection open", "connection closed"}
)


class QuietSockets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno <= logging.INFO and record.msg in _SOCKET_LINES)


#: Paths whose successful requests are not access-logged: the page's static files and
#: the load balancer's health checks.
_QUIET_PREFIXES = ("/static/",)
_QUIET_PATHS = frozenset({"/healthz", "/readyz", "/favicon.ico"})


class QuietAccess(logging.Filter):
    """On ``uvicorn.access``: drop the lines of static files and health checks answered
    below 400 (their errors stay)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        # uvicorn's access record: (client, method, path with query, http version, status)
        if not isinstance(args, tuple) or len(args) != 5:
            return True
        path, status = str(args[2]).partition("?")[0], args[4]
        if not isinstance(status, int) or status >= 400:
            return True
        return not (path.startswith(_QUIET_PREFIXES) or path in _QUIET_PATHS)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``time`` (ISO 8601, UTC, milliseconds), ``level``,
    ``logger``, ``message``, the fields of the hub's connection and HTTP error lines
    (``event``, ``session``, ``code``...), and ``exc_info`` when there is one. Every
    string is redacted before it is encoded."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        out: dict[str, Any] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        event = getattr(record, "event", None)
        if isinstance(event, str):
            out["event"] = event
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            for key, value in fields.items():
                if key not in out:
                    out[key] = redact(value) if isinstance(value, str) else value
        if record.exc_info:
            out["exc_info"] = redact(self.formatException(record.exc_info))
        if record.stack_info:
            out["stack_info"] = redact(self.formatStack(record.stack_info))
        return json.dumps(out, ensure_ascii=False, default=str)


LOG_FORMATS = ("text", "json")
