"""One voice exchange, the reference for every platform adapter: what the screens see
when the ElevenLabs bridge carries it (its mapping, ``ConversationFrames``, fed as the
bridge feeds it), as a list of comparable tuples.

The exchange: the agent is ready; the user asks; the agent runs a hub tool; the agent
answers; its speech ends. :func:`speech_ended` and :func:`ran_once` are what the
platform tests wait for and check on a screen.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from companion_ws.integrations.voice_frames import ConversationFrames
from tests.support.ws import WS

ASK = "Ship a 5 lb box to New York"
ANSWER = "The cheapest is USPS at twelve dollars and eighty cents."
QUOTE_PARAMS = {"from_zip": "90210", "to_zip": "10001", "weight": 5}

#: What the screens see of a conversation: section 13 frames and the hub's tool frames.
SEEN = {"transcript", "agent_state", "step", "tool_call_started", "tool_call_finished"}


def seen(frames: Iterable[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The frames a screen shows, as comparable tuples (ids and timings left out)."""
    out: list[tuple[Any, ...]] = []
    for f in frames:
        match f.get("type"):
            case "transcript":
                out.append(("transcript", f["role"], f["text"], f["final"]))
            case "agent_state":
                out.append(("agent_state", f["state"]))
            case "step":
                out.append(("step", f["name"], f["status"]))
            case "tool_call_started" | "tool_call_finished" as kind:
                out.append((kind, f["tool_name"]))
    return out


def with_elevenlabs(tool: str = "get_shipping_quotes") -> list[tuple[Any, ...]]:
    """The exchange as the ElevenLabs bridge publishes it (plus the hub's tool frames,
    which come between the bridge's ``thinking`` and the agent's answer)."""
    frames = ConversationFrames()
    out = frames.ready() + frames.user_said(ASK) + frames.tool_call()
    out += [{"type": "tool_call_started", "tool_name": tool}]
    out += [{"type": "tool_call_finished", "tool_name": tool}]
    out += frames.agent_said(ANSWER) + frames.mode("listening")
    return seen(out)


def speech_ended() -> Callable[[dict[str, Any]], bool]:
    """Matches the ``listening`` that follows the agent's answer (a ``frames_until`` stop)."""
    answered = False

    def match(frame: dict[str, Any]) -> bool:
        nonlocal answered
        if frame["type"] == "transcript" and frame["role"] == "agent":
            answered = True
        return answered and frame == {**frame, "type": "agent_state", "state": "listening"}

    return match


async def ran_once(ui: WS, tool_call_id: str) -> None:
    """The hub ran the session's one tool call ``tool_call_id`` once, however often the
    agent asked: one change to the state, one ``tool_call_started`` in the history."""
    state = await ui.request({"type": "get_session_state"})
    assert state["version"] == 1  # one run: one change
    history = await ui.request({"type": "get_history", "after_seq": 0})
    started = [e for e in history["events"] if e["type"] == "tool_call_started"]
    assert [e["tool_call_id"] for e in started] == [tool_call_id]
