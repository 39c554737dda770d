"""The other packages' internals the hub's connect path relies on, pinned: when one of
them changes, this fails, and the code that copies or drives it is checked again.

- ``companion_ws/endpoints/http_protocol.py`` copies uvicorn's
  ``HttpToolsProtocol.connection_made`` (reading the two addresses from the transport's
  extras) and ``handle_websocket_upgrade`` (handing the parsed request over);
- ``companion_ws/endpoints/socket_protocol.py`` (``SocketProtocol.upgrade``) builds the
  ``Request`` that websockets' ``Request.parse`` would, with its header checks, and sets
  ``ServerProtocol``'s parser past the request (``Protocol.parse``);
- ``companion_ws/auth/tokens.py`` replaces PyJWT's ``PyJWS._decode_base64url_segment``
  on the hub's own codec with an exact equivalent.
"""

from __future__ import annotations

import hashlib
import inspect
from typing import Any

import jwt
import pytest
import websockets.http11
from jwt.api_jws import PyJWS
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from websockets.protocol import Protocol
from websockets.server import ServerProtocol
from websockets.streams import StreamReader

from companion_ws.auth.tokens import _segment
from companion_ws.endpoints.socket_protocol import _request, _serialise

PINNED = {
    "uvicorn HttpToolsProtocol.connection_made": "6efb565ff3d36b91",
    "uvicorn HttpToolsProtocol.handle_websocket_upgrade": "d5da377bfc77e588",
    "websockets ServerProtocol.parse": "8c4d10340de4d32f",
    "websockets Protocol.parse": "45aaf900644b63c4",
    "websockets Request.parse": "fd00e2611149536e",
    "websockets parse_headers": "90bddf8d62394fe6",
    "pyjwt PyJWS._decode_base64url_segment": "c00c1d4615f8809d",
}


def _digest(obj: Any) -> str:
    return hashlib.sha256(inspect.getsource(obj).encode()).hexdigest()[:16]


@pytest.mark.parametrize(
    ("name", "obj"),
    [
        ("uvicorn HttpToolsProtocol.connection_made", HttpToolsProtocol.connection_made),
        (
            "uvicorn HttpToolsProtocol.handle_websocket_upgrade",
            HttpToolsProtocol.handle_websocket_upgrade,
        ),
        ("websockets ServerProtocol.parse", ServerProtocol.parse),
        ("websockets Protocol.parse", Protocol.parse),
        ("websockets Request.parse", websockets.http11.Request.parse),
        ("websockets parse_headers", websockets.http11.parse_headers),
        ("pyjwt PyJWS._decode_base64url_segment", PyJWS._decode_base64url_segment),
    ],
)
def test_the_copied_and_driven_internals_are_the_pinned_ones(name: str, obj: Any) -> None:
    assert _digest(obj) == PINNED[name], f"{name} changed: check the code that relies on it"


def _parsed(raw: bytes) -> websockets.http11.Request | None:
    """What websockets' own parser makes of ``raw`` (None: it refuses it)."""
    reader = StreamReader()
    reader.feed_data(raw)
    parser = websockets.http11.Request.parse(reader.read_line)
    try:
        next(parser)
    except StopIteration as done:
        request: websockets.http11.Request = done.value
        return request
    except Exception:
        return None
    return None


HEAD = [
    (b"host", b"127.0.0.1:8000"),
    (b"upgrade", b"websocket"),
    (b"connection", b"Upgrade"),
    (b"sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
    (b"sec-websocket-version", b"13"),
]


@pytest.mark.parametrize(
    ("method", "target", "extra", "fast"),
    [
        (b"GET", b"/ws?token=abc", [], True),
        (b"GET", b"/ws/s1?token=a%20b", [(b"sec-websocket-protocol", b"companion.v1, b.x")], True),
        (b"GET", b"/ws", [(b"x-odd", b"  spaced\t ")], True),
        (b"GET", b"/ws", [(b"content-length", b"0")], True),
        (b"GET", b"/ws", [(b"x-latin", b"caf\xe9")], True),
        (b"GET", b"/ws", [(b"content-length", b"5")], False),
        (b"GET", b"/ws", [(b"transfer-encoding", b"chunked")], False),
        (b"GET", b"/ws", [(b"bad name", b"x")], False),
        (b"GET", b"/ws", [(b"x", b"a\x01b")], False),
        (b"POST", b"/ws", [], False),
        (b"GET", "/wś".encode(), [], False),
        (b"GET", b"/ws", [(b"x-%d" % i, b"v") for i in range(200)], False),
    ],
)
def test_the_request_handed_over_is_what_websockets_would_parse(
    method: bytes, target: bytes, extra: list[tuple[bytes, bytes]], fast: bool
) -> None:
    """Where the fast path makes a Request it is the parser's; where the parser would
    refuse or look closer, the fast path gives way (the long path answers as before)."""
    headers = HEAD + extra
    handed = _request(method, target, headers)
    assert (handed is not None) is fast
    if handed is None:
        return  # the long way: websockets' parser itself
    slow = _parsed(_serialise(method, target, headers))
    assert slow is not None
    assert (handed.method, handed.path, handed.protocol) == (slow.method, slow.path, slow.protocol)
    assert list(handed.headers.raw_items()) == list(slow.headers.raw_items())


SEGMENTS = [
    b"", b"e30", b"e30=", b"e30==", b"e30===", b"eyJhIjoxfQ", b"eyJhIjoxfQ==", b"eyJhIjoxfQ=",
    b"!!!!", b"e30!", b"a", b"ab", b"abc", b"abcd", b"ab=c", b"abc=", b"ab==", b"a===",
    b"AB-_", b"AB+/", b"ab c", b"\xff\xfe", b"abf", b"abg", b"====", b"e3==",
]  # fmt: skip


@pytest.mark.parametrize("segment", SEGMENTS)
def test_the_segment_decoder_answers_as_pyjwts(segment: bytes) -> None:
    def outcome(decode: Any) -> tuple[str, Any]:
        try:
            return "ok", decode(segment, "payload")
        except jwt.DecodeError as exc:
            return "error", str(exc)

    assert outcome(_segment) == outcome(PyJWS._decode_base64url_segment)
