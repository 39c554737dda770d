"""companion_ws.logs: no token survives into a log line."""

from __future__ import annotations

import json
import logging
import sys

import pytest

from companion_ws.auth.tokens import Principal
from companion_ws.connlog import user_of
from companion_ws.logs import (
    JsonFormatter,
    QuietAccess,
    QuietSockets,
    RedactingFormatter,
    log_config,
    redact,
)
from companion_ws.protocol.handshake import fits_subprotocol, offer, token_from

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVz"


@pytest.mark.parametrize(
    "line",
    [
        f"GET /ws?token={JWT}&session_id=s1",
        f"GET /ws?%74oken={JWT}",
        f"GET /ws?%74%6F%6B%65%6E={JWT}",
        "GET /join?token=AbCdEfGhIjKlMnOpQrStUv",
        f"GET /ws?session_id=s1&reconnect%5Ftoken={JWT}",
        f"Authorization: Bearer {JWT}",
        f"ValueError: could not use {JWT} here",
    ],
)
def test_every_shape_of_token_is_redacted(line: str) -> None:
    out = redact(line)
    assert JWT not in out and "AbCdEfGhIjKlMnOpQrStUv" not in out and "[redacted]" in out


def test_other_parameters_are_left_alone() -> None:
    assert redact("GET /ws?session_id=s1&last_seq=4") == "GET /ws?session_id=s1&last_seq=4"


def test_a_token_inside_a_traceback_is_redacted() -> None:
    try:
        raise RuntimeError(f"connect failed for ?token={JWT}")
    except RuntimeError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), None)
        record.exc_info = sys.exc_info()
    text = RedactingFormatter("%(message)s").format(record)
    assert "RuntimeError" in text and JWT not in text


def _access(path: str, status: int) -> logging.LogRecord:
    args = ("127.0.0.1:5000", "GET", path, "1.1", status)
    return logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d', args, None
    )


@pytest.mark.parametrize(
    ("path", "status", "kept"),
    [
        ("/static/app.js", 200, False),
        ("/static/app.js?v=2", 304, False),
        ("/healthz", 200, False),
        ("/readyz", 200, False),
        ("/static/missing.js", 404, True),  # errors stay
        ("/readyz", 503, True),
        ("/sessions", 200, True),
        ("/?token=x", 200, True),
    ],
)
def test_static_files_and_health_checks_are_not_access_logged(
    path: str, status: int, kept: bool
) -> None:
    assert QuietAccess().filter(_access(path, status)) is kept


@pytest.mark.parametrize(
    ("msg", "kept"),
    [
        ('%s - "WebSocket %s" [accepted]', False),
        ("connection open", False),
        ("connection closed", False),
        ('%s - "WebSocket %s" 403', True),  # a WebSocket on a path that is not /ws
        ("Started server process [%d]", True),
    ],
)
def test_uvicorns_per_socket_lines_are_dropped(msg: str, kept: bool) -> None:
    record = logging.LogRecord("uvicorn.error", logging.INFO, __file__, 1, msg, None, None)
    assert QuietSockets().filter(record) is kept


def test_json_lines_are_redacted_and_parse() -> None:
    record = logging.LogRecord(
        "companion_ws.ws", logging.INFO, __file__, 1, "refused via ?token=%s", (JWT,), None
    )
    record.event = "refused"
    record.fields = {"code": 4401, "reason": f'bad "{JWT}"', "peer": None}
    out = json.loads(JsonFormatter().format(record))
    assert out["level"] == "info" and out["logger"] == "companion_ws.ws"
    assert out["event"] == "refused" and out["code"] == 4401 and out["peer"] is None
    assert JWT not in json.dumps(out) and out["reason"] == 'bad "[redacted]"'
    assert out["message"] == "refused via ?token=[redacted]"


def test_log_config_knows_two_formats() -> None:
    assert log_config("info", "json")["formatters"]["default"]["()"].endswith("JsonFormatter")
    with pytest.raises(ValueError, match="log format"):
        log_config("info", "xml")


@pytest.mark.parametrize(
    "token",
    [JWT, "AbCdEfGhIjKlMnOpQrStUv", "Zm9v-YmFy_YmF6"],  # a JWT, join codes (base64url)
)
def test_jwts_and_join_codes_fit_a_subprotocol(token: str) -> None:
    assert fits_subprotocol(token)
    assert offer(token) == ["companion.v1", f"bearer.{token}"]
    assert token_from(offer(token)) == token


@pytest.mark.parametrize("token", ["a/b+c==", "with space", "semi;colon", "é", ""])
def test_other_tokens_are_not_offered_as_a_subprotocol(token: str) -> None:
    assert offer(token) == ["companion.v1"]


def test_the_connection_lines_never_name_a_join_code() -> None:
    join = Principal(sub="", token_type="join", jti="AbCdEfGhIjKlMnOpQrStUv")
    assert user_of(join) is None
    assert user_of(Principal(sub="alice")) == "alice"
