"""Bytes <-> messages. Client frames decode to a typed :data:`ClientMessage` or raise a
:class:`~companion_ws.protocol.errors.BadRequest` carrying the error code; server frames (the
structs of :mod:`companion_ws.protocol.frames`) are encoded once.

A broadcast frame is encoded *without* its ``seq``; the broker splices the number in
front (:func:`with_seq`) when it assigns it, so the body is serialized once per event,
whatever the number of receivers.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from companion_ws.protocol import messages as m
from companion_ws.protocol.clock import now_ms
from companion_ws.protocol.errors import BadRequest, InvalidJSON, UnknownType
from companion_ws.protocol.messages import MESSAGE_TYPES, ClientMessage

__all__ = [
    "JSON_ERRORS",
    "MAX_DEPTH",
    "check_depth",
    "decode",
    "decode_body",
    "decode_json",
    "encode",
    "now_ms",
    "request_id_of",
    "seq_of",
    "to_builtins",
    "with_seq",
]

_decoder = msgspec.json.Decoder(ClientMessage)
_any_decoder = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()
# What decoding untrusted bytes can raise: msgspec reports bad UTF-8 inside a string as
# UnicodeDecodeError, not DecodeError, and deep nesting as RecursionError.
JSON_ERRORS = (msgspec.DecodeError, UnicodeDecodeError, RecursionError)
_SEQ_PREFIX = re.compile(rb'^\{"seq":(\d+),')

# JSON nested deeper than this is refused (``invalid_message``): client documents are
# merged recursively (ui_state), and msgspec itself has no depth option.
MAX_DEPTH = 64
_TOO_DEEP = f"JSON is nested more than {MAX_DEPTH} levels deep"


class _Envelope(msgspec.Struct):
    """Only a frame's ``requestId``: the rest is skipped without building objects."""

    requestId: Any = None


_envelope_decoder = msgspec.json.Decoder(_Envelope)


def decode(data: str | bytes) -> ClientMessage:
    """Decode one client frame. Raises InvalidJSON, UnknownType or BadRequest."""
    try:
        message: ClientMessage = _decoder.decode(data)
    except msgspec.ValidationError as exc:
        raise _classify(data, str(exc)) from None
    except msgspec.DecodeError as exc:
        raise InvalidJSON(f"not valid JSON: {exc}") from None
    except UnicodeDecodeError as exc:
        # msgspec raises this (not DecodeError) for bad UTF-8 inside a string.
        raise InvalidJSON(f"not valid UTF-8: {exc.reason} at byte {exc.start}") from None
    except RecursionError:
        raise BadRequest(_TOO_DEEP) from None
    # Only the free-form fields can nest: frames without them are not walked.
    kind = type(message)
    if kind is m.UpdateSessionState:
        _check_fields(message, ("patch", "value"), 2)
    elif kind is m.ContextualUpdate:
        _check_fields(message, ("data",), 2)
    elif kind is m.ClientToolCall:
        assert isinstance(message, m.ClientToolCall)
        _check_fields(message, ("metadata",), 2)
        _check_fields(message.client_tool_call, ("parameters",), 3)
    return message


def _check_fields(obj: object, names: tuple[str, ...], depth: int) -> None:
    for name in names:
        value = getattr(obj, name)
        if type(value) is dict or type(value) is list:
            check_depth(value, depth)


def check_depth(value: Any, depth: int = 1, limit: int = MAX_DEPTH) -> None:
    """Raise BadRequest when ``value`` (a decoded JSON value whose outermost container
    is at nesting level ``depth``) holds containers deeper than ``limit``. Iterative,
    so a deep value cannot exhaust the stack; it visits containers, not scalars."""
    stack: list[tuple[Any, int]] = [(value, depth)]
    while stack:
        node, level = stack.pop()
        if level > limit:
            raise BadRequest(_TOO_DEEP)
        children = node.values() if type(node) is dict else node
        for child in children:
            if type(child) is dict or type(child) is list:
                stack.append((child, level + 1))


def _classify(data: str | bytes, detail: str) -> BadRequest:
    if detail.endswith("at `$.type`") or "missing required field `type`" in detail:
        try:
            obj = _any_decoder.decode(data)
        except JSON_ERRORS:
            obj = None
        kind = obj.get("type") if isinstance(obj, dict) else None
        if isinstance(kind, str) and kind not in MESSAGE_TYPES:
            return UnknownType(f"unknown message type {kind!r}")
        if kind is None:
            return BadRequest("a message needs a string field `type`")
    return BadRequest(detail)


def request_id_of(data: str | bytes) -> str | None:
    """Best-effort ``requestId`` of a frame that failed to decode (or was refused before
    decoding), for the error reply. Cheap: nothing but the ``requestId`` is built."""
    try:
        rid = _envelope_decoder.decode(data).requestId
    except (*JSON_ERRORS, msgspec.ValidationError):
        return None
    return rid if isinstance(rid, str) and len(rid) <= 128 else None


def encode(value: Any) -> bytes:
    """JSON bytes of a frame (a :mod:`~companion_ws.protocol.frames` struct) or of any
    plain value."""
    return _encoder.encode(value)


def to_builtins(value: Any) -> Any:
    return msgspec.to_builtins(value)


def decode_json(data: str | bytes) -> Any:
    """Plain JSON (state documents, stored events)."""
    return _any_decoder.decode(data)


def decode_body(data: str | bytes, *, depth: int = 1) -> Any:
    """Untrusted plain JSON, from any door (an HTTP body, a gRPC field, a bus message):
    as :func:`decode_json`, and nested at most :data:`MAX_DEPTH` levels deep (else
    BadRequest), counting from ``depth``, the level the value sits at in its message."""
    try:
        value = _any_decoder.decode(data)
    except RecursionError:
        raise BadRequest(_TOO_DEEP) from None
    if type(value) is dict or type(value) is list:
        check_depth(value, depth)
    return value


def with_seq(body: bytes, seq: int) -> bytes:
    """Splice ``"seq": N`` in front of an encoded frame object."""
    return b'{"seq":%d,' % seq + body[1:]


def seq_of(payload: bytes) -> int:
    """The seq of a frame made by :func:`with_seq`."""
    match = _SEQ_PREFIX.match(payload)
    if match is None:
        raise ValueError("not a sequenced frame")
    return int(match.group(1))
