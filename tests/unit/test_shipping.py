"""The shipping tool pack (docs/protocol.md section 10): deterministic quotes, labels for the
session's quotes, and errors that name the parameter."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from companion_ws.tools.registry import ToolError
from companion_ws.tools.shipping import create_shipping_label, get_shipping_quotes, quote_table
from ui_state import create_session_context, merge_patch

zips = st.from_regex(r"\A\d{5}\Z")
weights = st.floats(min_value=0.01, max_value=150, allow_nan=False)


@given(zips, zips, weights)
def test_quotes_are_deterministic_sorted_and_complete(a: str, b: str, w: float) -> None:
    quotes = quote_table(a, b, w)
    assert quotes == quote_table(a, b, w)
    assert len(quotes) == 5 and len({q["quote_id"] for q in quotes}) == 5
    assert [q["cost"] for q in quotes] == sorted(q["cost"] for q in quotes)
    for q in quotes:
        assert set(q) == {"quote_id", "carrier", "service", "cost", "days"}
        assert q["cost"] > 0 and q["days"] >= 1


def test_heavier_and_farther_costs_more() -> None:
    def costs(a: str, b: str, w: float) -> dict[tuple[str, str], float]:
        return {(q["carrier"], q["service"]): q["cost"] for q in quote_table(a, b, w)}

    near, far, heavy = (
        costs("10001", "10002", 5),
        costs("10001", "90210", 5),
        costs("10001", "10002", 50),
    )
    for service, cost in near.items():
        assert far[service] > cost and heavy[service] > cost


async def test_get_shipping_quotes_writes_details_quotes_and_a_fresh_start() -> None:
    params = get_shipping_quotes.parse({"from_zip": "90210", "to_zip": "10001", "weight": 5})
    outcome = await get_shipping_quotes.fn({"selected_option": {"x": 1}}, **params)
    details = {"from": "90210", "to": "10001", "weight_lbs": 5.0}
    quotes = quote_table("90210", "10001", 5)
    assert outcome.result == {"shipping_details": details, "quotes": quotes}
    assert outcome.update_text == "quote_ready"
    assert outcome.update_data == {"shipping_details": details, "quotes": quotes}
    assert outcome.patch is not None
    state = merge_patch({"selected_option": {"x": 1}, "label": {"t": 1}}, outcome.patch)
    assert "selected_option" not in state and "label" not in state  # new quotes, new choice
    assert state["ui"] == {"current_step": "quotes"}


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"from_zip": "9021", "to_zip": "10001", "weight": 5}, "from_zip"),
        ({"from_zip": "90210", "to_zip": "abcde", "weight": 5}, "to_zip"),
        ({"from_zip": "90210", "to_zip": "10001", "weight": 0}, "weight"),
        ({"from_zip": "90210", "to_zip": "10001", "weight": -1}, "weight"),
        ({"from_zip": "90210", "to_zip": "10001", "weight": 150.5}, "weight"),
        ({"from_zip": "90210", "to_zip": "10001"}, "weight"),
    ],
)
def test_bad_quote_parameters_are_named(params: dict[str, Any], named: str) -> None:
    with pytest.raises(ToolError, match=named):
        get_shipping_quotes.parse(params)


def _state() -> dict[str, Any]:
    details = {"from": "90210", "to": "10001", "weight_lbs": 5}
    return {"shipping_details": details, "quotes": quote_table("90210", "10001", 5)}


async def test_a_label_for_a_quote_by_id_or_by_carrier_and_service() -> None:
    state = _state()
    fedex = next(q for q in state["quotes"] if q["carrier"] == "FedEx" and q["service"] == "Ground")
    by_id = await create_shipping_label.run(state, {"quote_id": fedex["quote_id"]})
    by_name = await create_shipping_label.run(state, {"carrier": "fedex", "service": "GROUND"})
    assert by_id == by_name
    label = by_id.result["label"]
    assert label["tracking_number"].startswith("1Z") and len(label["tracking_number"]) == 18
    assert (label["carrier"], label["service"], label["cost"]) == ("FedEx", "Ground", fedex["cost"])
    assert by_id.patch == {
        "label": label,
        "selected_option": fedex,
        "ui": {"current_step": "label"},
    }
    assert by_id.update_text == "label_created" and by_id.update_data == {"label": label}
    summary = create_session_context(merge_patch(state, by_id.patch))
    assert label["tracking_number"] in summary and "selected FedEx Ground" in summary


@pytest.mark.parametrize(
    ("state", "params", "named"),
    [
        ({}, {"quote_id": "q_1"}, "get_shipping_quotes first"),
        (None, {"quote_id": "q_nope"}, "quote_id: no quote 'q_nope'"),
        (None, {}, "quote_id: give a quote_id"),
        (None, {"carrier": "DHL"}, "quote_id: give a quote_id, or both"),
        (None, {"carrier": "DHL", "service": "Express"}, "carrier: no DHL Express quote"),
        (None, {"quote_id": 7}, "quote_id"),
    ],
)
async def test_a_label_needs_a_quote_of_this_session(
    state: dict[str, Any] | None, params: dict[str, Any], named: str
) -> None:
    with pytest.raises(ToolError, match=named):
        await create_shipping_label.run(_state() if state is None else state, params)


async def test_a_forged_price_in_the_state_never_reaches_the_label() -> None:
    """Any client may write the state: the label is priced from the rate table."""
    state = _state()
    honest = state["quotes"][0]
    state["quotes"][0] = {**honest, "cost": 0.01, "carrier": "Free"}
    label = (await create_shipping_label.run(state, {"quote_id": honest["quote_id"]})).result
    assert label["label"]["cost"] == honest["cost"] and label["label"]["carrier"] != "Free"
    forged_id = {**state, "quotes": [{"quote_id": "q_cheap", "cost": 0.01}]}
    with pytest.raises(ToolError, match="no quote 'q_cheap'"):
        await create_shipping_label.run(forged_id, {"quote_id": "q_cheap"})


@pytest.mark.parametrize(
    "details",
    [{"from": "90210"}, {"from": 1, "to": "10001", "weight_lbs": 5}, "junk", [1, 2]],
)
async def test_malformed_shipping_details_are_a_clear_tool_error(details: Any) -> None:
    with pytest.raises(ToolError, match="shipping details are not valid"):
        await create_shipping_label.run({"shipping_details": details}, {"quote_id": "q_1"})
