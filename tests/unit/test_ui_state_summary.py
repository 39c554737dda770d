"""ui_state.summary: what a resumed agent is told, and one sentence per screen change."""

from __future__ import annotations

from typing import Any

from hypothesis import given

from tests.unit.strategies import json_objects, relaxed
from ui_state import create_session_context, describe_change

QUOTES = [
    {"quote_id": "q1", "carrier": "UPS", "service": "Ground", "cost": 12.5, "days": 5},
    {"quote_id": "q2", "carrier": "FedEx", "service": "2Day", "cost": 31, "days": 2},
]
FULL: dict[str, Any] = {
    "shipping_details": {"from": "90210", "to": "10001", "weight_lbs": 5},
    "quotes": QUOTES,
    "selected_option": "q2",
    "label": {
        "tracking_number": "1Z999AA10123456784",
        "carrier": "FedEx",
        "service": "2Day",
        "cost": 31,
    },
    "ui": {"current_step": "label"},
}


def test_the_summary_names_details_quotes_selection_and_label() -> None:
    text = create_session_context(FULL)
    for needle in ("90210", "10001", "5 lb", "UPS Ground", "$12.50", "5 days"):
        assert needle in text, needle
    assert "FedEx 2Day for $31.00, 2 days" in text
    assert "selected FedEx 2Day" in text
    assert "tracking number 1Z999AA10123456784" in text
    assert "'label' step" in text


def test_the_summary_of_an_empty_session_says_nothing_was_decided() -> None:
    assert "nothing has been decided" in create_session_context({})


def test_a_selection_given_as_an_object_is_described() -> None:
    state = {"selected_option": {"carrier": "USPS", "service": "Priority", "cost": 9}}
    assert "The user selected USPS Priority for $9.00." in create_session_context(state)


def test_a_label_without_a_tracking_number_is_not_mentioned() -> None:
    assert "label" not in create_session_context({"label": {"carrier": "UPS"}}).lower()


@relaxed
@given(state=json_objects)
def test_any_state_gets_a_summary(state: dict[str, Any]) -> None:
    assert create_session_context(state).strip()


def test_describe_change_names_the_selection_and_the_other_keys() -> None:
    state = {**FULL, "notes": "fragile"}
    text = describe_change(
        {"selected_option": "q1", "notes": "fragile"}, state | {"selected_option": "q1"}
    )
    assert text is not None
    assert "selected UPS Ground for $12.50" in text
    assert "changed notes" in text


def test_describe_change_ignores_ui_only_changes() -> None:
    assert describe_change({"ui": {"scroll": 10}}, FULL) is None


def test_describe_change_reports_a_cleared_selection_and_new_details() -> None:
    state = {"shipping_details": {"from": "1", "to": "2", "weight_lbs": 3}}
    text = describe_change({"selected_option": None, "shipping_details": {"to": "2"}}, state)
    assert text is not None
    assert "cleared the selected shipping option" in text
    assert "3 lb package from 1 to 2" in text


def _message(mid: str, role: str, text: str) -> dict[str, Any]:
    return {"message_id": mid, "role": role, "text": text, "final": True, "seq": 1}


def test_the_summary_quotes_the_last_exchanges_in_order() -> None:
    messages = [
        _message("u0", "user", "hello"),
        _message("u1", "user", "ship a 5 lb box"),
        _message("a1", "agent", "Sure! Where   from?"),
        _message("e", "agent", "  "),  # nothing said: skipped
        _message("u2", "user", "90210 to 10001"),
        _message("a2", "agent", "Here are your quotes."),
    ]
    text = create_session_context(FULL, messages, last=4)
    assert text.endswith(
        'The conversation so far ended with: the user said "ship a 5 lb box"; you said '
        '"Sure! Where from?"; the user said "90210 to 10001"; you said "Here are your quotes.".'
    )
    assert "hello" not in text
    assert "tracking number" in text  # the state is still summarized first
    assert "conversation" not in create_session_context(FULL, messages, last=0)


def test_a_long_message_is_cut_and_messages_alone_make_a_summary() -> None:
    text = create_session_context({}, [_message("u", "user", "x" * 500)])
    assert "nothing has been decided" not in text
    assert "x" * 199 + "…" in text and "x" * 200 not in text


def test_a_restored_session_says_so_first_and_quotes_the_conversation_last() -> None:
    task = {"task_id": "t", "name": "shipment", "status": "active", "restored_from": "old"}
    state = {**FULL, "tasks": [task]}
    text = create_session_context(state, [_message("u", "user", "the cheapest one")])
    assert text.startswith("This session continues an unfinished shipment task")
    assert text.endswith('The conversation so far ended with: the user said "the cheapest one".')
