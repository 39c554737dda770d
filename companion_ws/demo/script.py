"""The demo's conversation: a user ships a 5 lb box from 90210 to 10001.

The agent's lines are a script, not a model; the tools are the hub's real ones (the
shipping pack), run through the real bridge. The user picks a quote on a screen; if
nobody does within ``pick_timeout`` seconds, the scripted user says "the cheapest".
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from companion_ws.demo.standin import ScriptedConversation

__all__ = ["ShippingScript", "quote_named"]

INTRO = (
    "Hi! This is a scripted demo of companion_ws: I am a stand-in for an ElevenLabs "
    "voice agent, and nothing here reaches ElevenLabs. Watch the screen while we talk."
)


def quote_named(text: str, quotes: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The quote a ``contextual_update`` about a pick names ("...selected UPS Ground for
    $12.40..."), if any."""
    match = re.search(r"selected (.+?) for \$", text)
    if match is None:
        return None
    named = match.group(1).strip().lower()
    for quote in quotes:
        if f"{quote.get('carrier', '')} {quote.get('service', '')}".lower() == named:
            return quote
    return None


class ShippingScript:
    def __init__(self, *, pace: float = 1.5, pick_timeout: float = 45.0) -> None:
        self.pace = pace
        self.pick_timeout = pick_timeout

    async def __call__(self, talk: ScriptedConversation) -> None:
        if talk.number > 1:
            await self.carry_on(talk)
            return
        await talk.say(INTRO)
        await talk.pause(self.pace)
        await talk.user_said("I need to ship a 5 pound box from 90210 to 10001.")
        await talk.pause(self.pace)
        first = "Sure, let me look up the rates for a 5 pound box from Beverly Hills to New York"
        await talk.say(first + " and compare every carrier's ground and express")
        await talk.pause(self.pace / 2)
        await talk.user_said("Just the quotes, please.")
        await talk.interrupted(first + " and compare every carrier's", first + ".")
        result, failed = await talk.call_tool(
            "get_shipping_quotes", {"from_zip": "90210", "to_zip": "10001", "weight": 5}
        )
        quotes: list[Mapping[str, Any]] = [] if failed else list(result.get("quotes") or [])
        if not quotes:
            await talk.say("Sorry, I could not get any quotes right now.")
            return
        cheapest, fastest = quotes[0], min(quotes, key=lambda q: q.get("days", 99))
        await talk.say(
            f"I found {len(quotes)} options. The cheapest is {_name(cheapest)} at "
            f"${cheapest['cost']:.2f}; the fastest is {_name(fastest)} in {fastest['days']} "
            "days. Pick one on your screen, on this laptop or your phone."
        )
        await self._finish(talk, quotes)

    async def carry_on(self, talk: ScriptedConversation) -> None:
        """A later conversation: the voice moved to another screen (docs/protocol.md
        section 17). Its first contextual update says where the session stands; the
        agent names the quotes already fetched and goes on from there."""
        try:
            told = await talk.next_message(
                lambda m: m.get("type") == "contextual_update", self.pick_timeout
            )
        except TimeoutError:
            told = {}
        names = quotes_told(str(told.get("text", "")))
        if not names:
            await talk.say("Picking up on this screen. Where were we?")
            return
        await talk.say(
            f"Picking up on this screen: I had already fetched {len(names)} quotes, "
            f"{', '.join(names)}. Pick one here."
        )
        quotes = [{"carrier": n.split(" ", 1)[0], "service": n.split(" ", 1)[-1]} for n in names]
        chosen = await self._pick(talk, quotes)
        if chosen is not None:
            await talk.say(f"Great, {_name(chosen)}.")

    async def _finish(
        self, talk: ScriptedConversation, quotes: Sequence[Mapping[str, Any]]
    ) -> None:
        cheapest = quotes[0]
        chosen = await self._pick(talk, quotes)
        if chosen is None:
            await talk.user_said("The cheapest one, please.")
            chosen = cheapest
        await talk.pause(self.pace / 2)
        await talk.say(f"Great, {_name(chosen)}. Creating your label now.")
        result, failed = await talk.call_tool(
            "create_shipping_label", {"quote_id": chosen["quote_id"]}
        )
        if failed:
            await talk.say("The label could not be created. Let's try again later.")
            return
        tracking = (result.get("label") or {}).get("tracking_number", "")
        await talk.say(f"Done! Your tracking number is {tracking}. Anything else?")
        await talk.pause(self.pace)
        await talk.user_said("No, that's all. Thanks!")
        await talk.say("You're welcome. This was the end of the demo.")

    async def _pick(
        self, talk: ScriptedConversation, quotes: Sequence[Mapping[str, Any]]
    ) -> Mapping[str, Any] | None:
        """Wait for a screen's pick, told to the agent as a ``contextual_update``."""

        def names_a_quote(message: Mapping[str, Any]) -> bool:
            return message.get("type") == "contextual_update" and (
                quote_named(str(message.get("text", "")), quotes) is not None
            )

        try:
            message = await talk.next_message(names_a_quote, self.pick_timeout)
        except TimeoutError:
            return None
        return quote_named(str(message.get("text", "")), quotes)


def quotes_told(summary: str) -> list[str]:
    """The quotes a session summary names ("Quotes offered (5): UPS Ground for $12.40,
    5 days; ..."), by carrier and service."""
    match = re.search(r"Quotes offered \(\d+\): (.+?)\.(?: [A-Z]|$)", summary)
    if match is None:
        return []
    return [re.sub(r" for \$.*$", "", part).strip() for part in match.group(1).split("; ")]


def _name(quote: Mapping[str, Any]) -> str:
    return f"{quote.get('carrier', '')} {quote.get('service', '')}".strip()
