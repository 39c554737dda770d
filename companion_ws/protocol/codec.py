"""Bytes <-> messages. Client frames decode to a typed :data:`ClientMessage` or raise a
:class:`~companion_ws.errors.BadRequest` carrying the error code; server frames (the
structs of :mod:`companion_ws.protocol.frames`) are encoded once.

A broadcast frame is encoded *without* its ``seq``; the broker splices the number in
front (:func:`with_seq`) when it assigns it, so the body is serialized once per event,
whatever the number of receivers.
"""

from __future__ import annotations

import re
from typing import Any

import msgspec

from companion_ws.errors import BadRequest, InvalidJSON, UnknownType
from companion_ws.protocol.clock import now_ms
from companion_ws.protocol.messages import MESSAGE_TYPES, ClientMessage

__all__ = [
    "JSON_ERRORS",
    "decode",
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
        raise InvalidJSON("JSON is nested too deeply") from None
    return message


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
    """Best-effort ``requestId`` of a frame that failed to decode, for the error reply."""
    try:
        obj = _any_decoder.decode(data)
    except JSON_ERRORS:
        return None
    rid = obj.get("requestId") if isinstance(obj, dict) else None
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


def with_seq(body: bytes, seq: int) -> bytes:
    """Splice ``"seq": N`` in front of an encoded frame object."""
    return b'{"seq":%d,' % seq + body[1:]


def seq_of(payload: bytes) -> int:
    """The seq of a frame made by :func:`with_seq`."""
    match = _SEQ_PREFIX.match(payload)
    if match is None:
        raise ValueError("not a sequenced frame")
    return int(match.group(1))
