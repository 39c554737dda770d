"""One size limit and one depth limit for every door (docs/protocol.md section 4, v1.2), the
pure parts: the publisher's measure of a frame as clients receive it, the bus's dead
letters, the depth-checked decoding every door shares and the gRPC status of the error."""

from __future__ import annotations

import json
from pathlib import Path

import grpc
import pytest

from companion_ws.broker.memory import MemoryBroker
from companion_ws.bus.bridge import DEAD_EXCERPT, dead_letter
from companion_ws.grpc.errors import status_of
from companion_ws.hub.publisher import SEQ_ROOM, Publisher, check_size
from companion_ws.metrics import Metrics
from companion_ws.protocol import frames as f
from companion_ws.protocol.codec import MAX_DEPTH, decode_body, encode, with_seq
from companion_ws.protocol.errors import BadRequest, PayloadTooLarge
from companion_ws.store.eventlog import EventLog
from companion_ws.store.store import Store

LIMIT = 1000


def _deep(levels: int) -> str:
    return "[" * levels + "]" * levels


def test_the_limit_is_on_the_frame_as_clients_receive_it_seq_included() -> None:
    widest = with_seq(b"{" + b"x" * (LIMIT - SEQ_ROOM - 1), 2**64 - 1)
    assert len(widest) <= LIMIT  # the room kept for the seq is enough for any seq
    check_size(b"{" + b"x" * (LIMIT - SEQ_ROOM - 1), LIMIT, "step")
    with pytest.raises(PayloadTooLarge) as info:
        check_size(b"{" + b"x" * (LIMIT - SEQ_ROOM), LIMIT, "step")
    assert info.value.code == "payload_too_large" and info.value.http_status == 413
    assert info.value.extra == {"size": LIMIT + 1, "limit": LIMIT}
    assert "COMPANION_MAX_EVENT_BYTES" in info.value.message


def test_the_publisher_seals_every_frame_against_the_limit(tmp_path: Path) -> None:
    store = Store(f"sqlite+aiosqlite:///{tmp_path / 'unused.db'}")
    eventlog = EventLog(store, interval=1.0, batch=10, ttl_ms=1000)
    publisher = Publisher(MemoryBroker(), eventlog, Metrics(), max_event_bytes=LIMIT)
    small = f.ContextualUpdate(session_id="s", text="hi", sender="bus")
    sealed = publisher.seal(small)
    assert (sealed.session_id, sealed.kind, sealed.body) == (
        "s",
        "contextual_update",
        encode(small),
    )
    big = f.ContextualUpdate(session_id="s", text="x" * LIMIT, sender="bus")
    with pytest.raises(PayloadTooLarge):
        publisher.seal(big)
    # The hub's own bookkeeping (the tasks a session's end abandons) is not bounded.
    assert publisher.seal(big, bounded=False).body == encode(big)


def test_a_dead_letter_quotes_a_large_message_in_part() -> None:
    small = b'{"session_id": "s"}'
    assert json.loads(dead_letter("r: why", small)) == {
        "reason": "r: why",
        "message": small.decode(),
    }
    large = b'{"text": "' + b"x" * 100_000 + b'"}'
    letter = json.loads(dead_letter("too_large: big", large))
    assert letter["reason"] == "too_large: big" and letter["truncated"] is True
    assert letter["bytes"] == len(large) and letter["message"] == large[:DEAD_EXCERPT].decode()


def test_every_door_decodes_with_the_depth_limit() -> None:
    assert decode_body(_deep(MAX_DEPTH)) == json.loads(_deep(MAX_DEPTH))
    for text in (_deep(MAX_DEPTH + 1), _deep(900), _deep(100_000)):
        with pytest.raises(BadRequest, match="nested"):
            decode_body(text)
    # A value that sits one level down in its message (a gRPC tool parameter) counts it.
    with pytest.raises(BadRequest, match="nested"):
        decode_body(_deep(MAX_DEPTH), depth=2)


def test_grpc_answers_the_size_error_resource_exhausted() -> None:
    assert status_of(PayloadTooLarge("big")) is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert status_of(BadRequest("deep")) is grpc.StatusCode.INVALID_ARGUMENT


def test_a_keys_digest_is_what_the_message_says_not_when_how_or_by_whom() -> None:
    from companion_ws.hub.idempotent import _digest

    said = f.ContextualUpdate(session_id="s", text="pay 10", sender="bus", timestamp=1)
    again = f.ContextualUpdate(
        session_id="s", text="pay 10", sender="backend:root", timestamp=2, requestId="c2"
    )
    other = f.ContextualUpdate(session_id="s", text="pay 1000", sender="bus", timestamp=1)
    assert _digest(said) == _digest(again) != _digest(other)
