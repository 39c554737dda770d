"""companion_ws.logs: no token survives into a log line."""

from __future__ import annotations

import logging
import sys

import pytest

from companion_ws.logs import RedactingFormatter, redact

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
