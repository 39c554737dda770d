"""The post-call webhook's ledger key (docs/protocol.md section 7, v1.2): one signed body,
one key, whatever fields it carries."""

from __future__ import annotations

import hashlib

from companion_ws.endpoints.elevenlabs import post_call_key

KIND = "post_call_transcription"


def test_a_body_without_a_conversation_id_is_keyed_by_its_hash() -> None:
    body = b'{"type": "post_call_transcription", "data": {}}'
    key = post_call_key(KIND, "", body)
    assert key == post_call_key(KIND, "", body)  # a replay finds the first delivery
    assert hashlib.sha256(body).hexdigest() in key
    assert post_call_key(KIND, "", body + b" ") != key  # another body is another key


def test_a_conversation_id_keys_every_delivery_of_that_conversation() -> None:
    assert post_call_key(KIND, "conv_1", b"a") == post_call_key(KIND, "conv_1", b"b")
    assert post_call_key(KIND, "conv_1", b"a") != post_call_key(KIND, "conv_2", b"a")


def test_the_two_kinds_of_key_never_meet() -> None:
    body = b"{}"
    by_body = post_call_key(KIND, "", body)
    # A conversation id spelled like a body key's tail is still a conversation key.
    tail = by_body.split(":", 1)[1].removeprefix(KIND)
    assert post_call_key(KIND, tail, body) != by_body
    assert post_call_key(KIND, by_body, body) != by_body
