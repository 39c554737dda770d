"""Plain-language summaries of a session for the voice agent.

:func:`create_session_context` is what a resumed agent is told (the seeds'
``create_session_context``); :func:`describe_change` turns one state patch made on a
screen into a sentence for the agent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _money(value: Any) -> str:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"${value:,.2f}"
    return str(value)


def _amount(value: Any) -> str:
    """A number as said aloud: 5.0 -> "5", 2.5 -> "2.5"."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return f"{value:g}"
    return str(value)


def _quote_name(quote: Mapping[str, Any]) -> str:
    carrier = str(quote.get("carrier", "")).strip()
    service = str(quote.get("service", "")).strip()
    return " ".join(part for part in (carrier, service) if part) or str(
        quote.get("quote_id", "an option")
    )


def _describe_quote(quote: Mapping[str, Any]) -> str:
    text = f"{_quote_name(quote)} for {_money(quote.get('cost'))}"
    days = quote.get("days")
    if isinstance(days, int) and not isinstance(days, bool):
        text += f", {days} day{'s' if days != 1 else ''}"
    return text


def _selected(state: Mapping[str, Any]) -> Mapping[str, Any] | None:
    selected = state.get("selected_option")
    if isinstance(selected, Mapping):
        return selected
    if isinstance(selected, str):
        for quote in _quotes(state):
            if quote.get("quote_id") == selected:
                return quote
        return {"quote_id": selected}
    return None


def _quotes(state: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    quotes = state.get("quotes")
    if isinstance(quotes, Sequence) and not isinstance(quotes, str):
        return [q for q in quotes if isinstance(q, Mapping)]
    return []


def _continued(state: Mapping[str, Any]) -> str | None:
    """What a restored session's agent is told first: it carries on a task."""
    tasks = state.get("tasks")
    if not isinstance(tasks, Sequence) or isinstance(tasks, str) or not tasks:
        return None
    task = tasks[-1]
    if not isinstance(task, Mapping) or task.get("status") != "active":
        return None
    if not task.get("restored_from"):
        return None
    name = str(task.get("name") or "task")
    return (
        f"This session continues an unfinished {name} task from an earlier session; "
        "do not start over, carry on from what was already done."
    )


#: How many of the conversation's last messages the summary quotes, and how much of each.
LAST_MESSAGES = 4
QUOTE_CHARS = 200


def _exchanges(messages: Sequence[Mapping[str, Any]], last: int) -> str | None:
    """The last messages with text (``ui_state.conversation``'s), quoted for the agent."""
    said = [m for m in messages if isinstance(m.get("text"), str) and m["text"].strip()]
    quoted = []
    for message in said[-last:] if last > 0 else []:
        text = " ".join(message["text"].split())
        if len(text) > QUOTE_CHARS:
            text = text[: QUOTE_CHARS - 1].rstrip() + "…"
        who = "you" if message.get("role") == "agent" else "the user"
        quoted.append(f'{who} said "{text}"')
    return "; ".join(quoted) if quoted else None


def create_session_context(
    state: Mapping[str, Any],
    messages: Sequence[Mapping[str, Any]] = (),
    *,
    last: int = LAST_MESSAGES,
) -> str:
    """Summarize the session's task so far in a few sentences an agent can act on; with
    the conversation's ``messages`` (``GET /sessions/{id}/messages``), quote the
    ``last`` of them."""
    sentences: list[str] = []
    continued = _continued(state)
    details = state.get("shipping_details")
    if isinstance(details, Mapping):
        sentences.append(
            "Shipping details: a {w} lb package from {f} to {t}.".format(
                w=_amount(details.get("weight_lbs", "?")),
                f=details.get("from", "?"),
                t=details.get("to", "?"),
            )
        )
    quotes = _quotes(state)
    if quotes:
        listed = "; ".join(_describe_quote(q) for q in quotes)
        sentences.append(f"Quotes offered ({len(quotes)}): {listed}.")
    selected = _selected(state)
    if selected is not None:
        sentences.append(f"The user selected {_describe_quote(selected)}.")
    label = state.get("label")
    if isinstance(label, Mapping) and label.get("tracking_number"):
        sentences.append(
            f"A label was created: {_quote_name(label)}, tracking number "
            f"{label['tracking_number']}."
        )
    ui = state.get("ui")
    if isinstance(ui, Mapping) and ui.get("current_step"):
        sentences.append(f"The screen is at the '{ui['current_step']}' step.")
    exchanges = _exchanges(messages, last)
    said = f" The conversation so far ended with: {exchanges}." if exchanges else ""
    if continued is not None:
        done = " ".join(sentences) or "Nothing had been decided yet."
        return f"{continued} Already done: {done}{said}"
    if not sentences and not said:
        return "The session has just started: nothing has been decided yet."
    return ("Resuming the session. " + " ".join(sentences)).rstrip() + said


def describe_change(
    patch: Mapping[str, Any], state: Mapping[str, Any], *, actor: str = "the user"
) -> str | None:
    """One sentence for the agent about a state patch made on a screen, or ``None``
    when the patch changes nothing the agent needs to know (scroll position, say)."""
    parts: list[str] = []
    if "selected_option" in patch:
        selected = _selected(state)
        if selected is None:
            parts.append(f"{actor} cleared the selected shipping option")
        else:
            parts.append(f"{actor} selected {_describe_quote(selected)}")
    if "shipping_details" in patch and isinstance(state.get("shipping_details"), Mapping):
        d = state["shipping_details"]
        parts.append(
            f"{actor} set the shipping details to a {_amount(d.get('weight_lbs', '?'))} lb package "
            f"from {d.get('from', '?')} to {d.get('to', '?')}"
        )
    other = sorted(k for k in patch if k not in {"selected_option", "shipping_details", "ui"})
    if other:
        parts.append(f"{actor} changed {', '.join(other)}")
    if not parts:
        return None
    return "On screen, " + "; ".join(parts) + "."
