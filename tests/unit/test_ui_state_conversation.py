"""The conversation projection (docs/protocol.md section 13): transcript events in seq order
to messages, corrections applied, bounded by ``after_seq`` and ``limit``."""

from __future__ import annotations

from typing import Any

from ui_state.conversation import Conversation, messages_of


def _t(seq: int, mid: str, text: str, *, role: str = "user", final: bool = True) -> dict[str, Any]:
    return {
        "type": "transcript",
        "seq": seq,
        "timestamp": 1000 + seq,
        "session_id": "s",
        "role": role,
        "message_id": mid,
        "text": text,
        "final": final,
        "sender": "c1",
    }


def test_partials_and_corrections_replace_the_text_in_place_of_first_appearance() -> None:
    events = [
        _t(1, "u1", "ship a box", final=False),
        {"type": "session_state_updated", "seq": 2, "patch": {}, "version": 1},
        _t(3, "a1", "Sure, from", role="agent", final=False),
        _t(4, "u1", "ship a 5 lb box"),
        _t(5, "a1", "Sure, from where?", role="agent"),
        _t(6, "u2", "90210"),
        _t(7, "a1", "Sure, from which ZIP?", role="user"),  # a correction keeps the role
    ]
    assert messages_of(events) == [
        {
            "message_id": "u1",
            "role": "user",
            "text": "ship a 5 lb box",
            "final": True,
            "seq": 1,
            "timestamp": 1001,
        },
        {
            "message_id": "a1",
            "role": "agent",
            "text": "Sure, from which ZIP?",
            "final": True,
            "seq": 3,
            "timestamp": 1003,
        },
        {
            "message_id": "u2",
            "role": "user",
            "text": "90210",
            "final": True,
            "seq": 6,
            "timestamp": 1006,
        },
    ]


def test_a_correction_may_make_a_final_message_partial_again() -> None:
    [message] = messages_of([_t(1, "a1", "one two three"), _t(2, "a1", "one two", final=False)])
    assert (message["text"], message["final"]) == ("one two", False)


def test_malformed_and_other_events_are_ignored() -> None:
    events = [
        {"type": "transcript", "seq": 1, "message_id": "m", "role": "robot", "text": "x"},
        {**_t(2, "m", "x"), "final": "yes"},
        {**_t(3, "m", "x"), "seq": None},
        {"type": "contextual_update", "seq": 4, "text": "quote_ready"},
        _t(5, "m", "kept"),
    ]
    assert [(m["seq"], m["text"]) for m in messages_of(events)] == [(5, "kept")]


def test_limit_keeps_the_first_messages_and_still_applies_their_late_corrections() -> None:
    conversation = Conversation(limit=2)
    conversation.extend(
        [_t(1, "a", "1"), _t(2, "b", "2"), _t(3, "c", "3"), _t(4, "a", "1!"), _t(5, "c", "3!")]
    )
    assert [(m["message_id"], m["text"]) for m in conversation.messages()] == [
        ("a", "1!"),
        ("b", "2"),
    ]
    assert conversation.has_more is True


def test_after_seq_pages_on_and_a_late_correction_of_an_earlier_page_is_no_new_message() -> None:
    events = [_t(1, "a", "1"), _t(2, "b", "2"), _t(3, "c", "3"), _t(4, "a", "1!"), _t(5, "c", "3!")]
    first = Conversation(limit=2)
    first.extend(events)
    last_seq = first.messages()[-1]["seq"]
    rest = Conversation(after_seq=last_seq, limit=2)
    rest.extend(events)
    assert [(m["message_id"], m["text"], m["seq"]) for m in rest.messages()] == [("c", "3!", 3)]
    assert rest.has_more is False


def test_the_answer_is_a_copy() -> None:
    conversation = Conversation()
    conversation.add(_t(1, "a", "1"))
    conversation.messages()[0]["text"] = "changed"
    assert conversation.messages()[0]["text"] == "1"
