"""The shipping tool pack (docs/protocol.md section 10): the seeds' shipping assistant.

Rates come from a deterministic local table, not a carrier API, so a given request
always gets the same quotes.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

import msgspec

from companion_ws.tools.registry import State, ToolError, ToolOutcome, state_rule, tool

Zip = Annotated[str, msgspec.Meta(pattern=r"^\d{5}$", description="5-digit US ZIP code")]
Weight = Annotated[
    float, msgspec.Meta(gt=0, le=150, description="Package weight in pounds (0 < w <= 150)")
]

# carrier, service, base cost, cost per lb, cost per distance band, days
_RATES: tuple[tuple[str, str, float, float, float, int], ...] = (
    ("USPS", "Ground Advantage", 5.25, 0.55, 0.60, 5),
    ("UPS", "Ground", 8.40, 0.75, 0.85, 4),
    ("FedEx", "Ground", 8.10, 0.78, 0.80, 4),
    ("FedEx", "Express Saver", 17.90, 1.35, 1.40, 3),
    ("UPS", "2nd Day Air", 21.50, 1.80, 1.65, 2),
)


def _band(from_zip: str, to_zip: str) -> int:
    """A distance band 0-8 from the ZIPs' first digits (the national zone idea)."""
    return abs(int(from_zip[0]) - int(to_zip[0]))


def quote_table(from_zip: str, to_zip: str, weight: float) -> list[dict[str, Any]]:
    band = _band(from_zip, to_zip)
    quotes = []
    for carrier, service, base, per_lb, per_band, days in _RATES:
        cost = round(base + per_lb * weight + per_band * band, 2)
        key = f"{carrier}|{service}|{from_zip}|{to_zip}|{weight:g}"
        quote_id = "q_" + hashlib.sha1(key.encode()).hexdigest()[:10]
        quotes.append(
            {
                "quote_id": quote_id,
                "carrier": carrier,
                "service": service,
                "cost": cost,
                "days": days + (1 if band >= 6 and days > 2 else 0),
            }
        )
    return sorted(quotes, key=lambda q: q["cost"])


#: The task (docs/protocol.md section 13) quotes start and a label completes.
SHIPMENT = "shipment"


@tool(
    description="Get shipping quotes for a package between two US ZIP codes.",
    starts_task=SHIPMENT,
)
async def get_shipping_quotes(
    state: State, from_zip: Zip, to_zip: Zip, weight: Weight
) -> ToolOutcome:
    quotes = quote_table(from_zip, to_zip, weight)
    details = {"from": from_zip, "to": to_zip, "weight_lbs": weight}
    return ToolOutcome(
        result={"shipping_details": details, "quotes": quotes},
        patch={
            "shipping_details": details,
            "quotes": quotes,
            "selected_option": None,
            "label": None,
            "ui": {"current_step": "quotes"},
        },
        update_text="quote_ready",
        update_data={"shipping_details": details, "quotes": quotes},
    )


class _Details(msgspec.Struct):
    """The shipping details a label is priced from, validated as the quote tool's."""

    from_: Zip = msgspec.field(name="from")
    to: Zip
    weight_lbs: Weight


def _find_quote(
    state: State, quote_id: str | None, carrier: str | None, service: str | None
) -> dict[str, Any]:
    """The chosen quote, recomputed from the session's shipping details and the rate
    table: nothing a client could have written into the state (a price, a carrier)
    is taken from it."""
    raw = state.get("shipping_details")
    if not raw:
        raise ToolError("there are no quotes in this session yet: call get_shipping_quotes first")
    try:
        details = msgspec.convert(raw, _Details)
    except msgspec.ValidationError:
        raise ToolError(
            "the session's shipping details are not valid: call get_shipping_quotes again"
        ) from None
    quotes = quote_table(details.from_, details.to, details.weight_lbs)
    if quote_id is not None:
        for quote in quotes:
            if quote["quote_id"] == quote_id:
                return quote
        raise ToolError(f"quote_id: no quote {quote_id!r} for this session's shipping details")
    if carrier is None or service is None:
        raise ToolError("quote_id: give a quote_id, or both carrier and service")
    for quote in quotes:
        if quote["carrier"].lower() == carrier.lower() and quote["service"].lower() == (
            service.lower()
        ):
            return quote
    raise ToolError(f"carrier: no {carrier} {service} quote for this session's shipping details")


@tool(
    description="Create a shipping label for one of the session's quotes.",
    completes_task=SHIPMENT,
)
async def create_shipping_label(
    state: State,
    quote_id: Annotated[str | None, msgspec.Meta(description="The chosen quote's id")] = None,
    carrier: Annotated[str | None, msgspec.Meta(description="Carrier, if no quote_id")] = None,
    service: Annotated[str | None, msgspec.Meta(description="Service, if no quote_id")] = None,
) -> ToolOutcome:
    quote = _find_quote(state, quote_id, carrier, service)
    digest = hashlib.sha1(f"{quote['quote_id']}|label".encode()).hexdigest().upper()
    label = {
        "tracking_number": f"1Z{digest[:16]}",
        "carrier": quote["carrier"],
        "service": quote["service"],
        "cost": quote["cost"],
    }
    return ToolOutcome(
        result={"label": label},
        patch={"label": label, "selected_option": quote, "ui": {"current_step": "label"}},
        update_text="label_created",
        update_data={"label": label},
    )


@state_rule
def no_pick_after_label(state: State, patch: Any) -> str | None:
    """A rate picked once its label is made (a stale pick queued on an offline phone,
    say) would leave the shipment selected under another label: refused, unless the
    change also replaces the label or picks the very rate the label is for."""
    label = state.get("label")
    if not isinstance(patch, dict) or "selected_option" not in patch or "label" in patch:
        return None
    if not isinstance(label, dict):
        return None
    picked = patch["selected_option"]
    selected = state.get("selected_option")
    if (
        isinstance(picked, dict)
        and isinstance(selected, dict)
        and picked.get("quote_id") == selected.get("quote_id")
    ):
        return None
    return (
        f"selected_option: the label for {label.get('carrier')} {label.get('service')} "
        f"is already made (tracking {label.get('tracking_number')}); the shipment is "
        "done, so a new pick is refused. Ask the agent for new quotes to ship again"
    )
