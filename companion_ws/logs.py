"""Logging: tokens never reach a log line.

uvicorn's access and WebSocket log lines print the full path with its query string;
:class:`RedactTokens` rewrites ``token=...`` (its name percent-encoded too, as in
``%74oken=``), bearer credentials and anything shaped like a JWT before a message is
formatted, and :class:`RedactingFormatter` does it again on the finished line, so a
token inside a traceback or an exception's text is caught as well.
"""

from __future__ import annotations

import logging
import re
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


def log_config(level: str = "info") -> dict[str, Any]:
    """uvicorn's logging config with the redaction filter on every handler."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"redact": {"()": "companion_ws.logs.RedactTokens"}},
        "formatters": {
            "default": {
                "()": "companion_ws.logs.RedactingFormatter",
                "format": "%(asctime)s %(levelname)s %(name)s: %(message)s",
            },
        },
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
            "uvicorn.error": {"level": level.upper()},
            "uvicorn.access": {"handlers": ["default"], "level": level.upper(), "propagate": False},
            "companion_ws": {"handlers": ["default"], "level": level.upper(), "propagate": False},
        },
    }
