"""What the voice conversation looks like on the screens: ElevenLabs' conversation
events in, docs/protocol.md section 13 frames (``transcript``, ``agent_state``) out. Pure:
the bridge feeds it what the SDK reports and publishes what it returns, in order.

=====================================  ==================================================
ElevenLabs (SDK callback or message)   frames
=====================================  ==================================================
conversation ready                     ``agent_state`` ``listening``
``tentative_user_transcript``          ``transcript`` user, ``final: false`` (the user's
                                       turn so far; the final one replaces it);
                                       ``listening`` if the agent was speaking
``user_transcript``                    ``transcript`` user, ``final: true`` (the same
                                       ``message_id`` as the tentative ones), then
                                       ``agent_state`` ``thinking``: the agent works on
                                       its answer
``client_tool_call``                   ``agent_state`` ``thinking`` (the hub's tool path
                                       broadcasts ``tool_call_started`` / ``finished``)
``agent_chat_response_part``           start: a new agent message; delta: ``transcript``
                                       agent, ``final: false``, the text so far; stop:
                                       the same message ``final: true``
``agent_response``                     ``agent_state`` ``speaking``, then ``transcript``
                                       agent ``final: true`` (the streamed message's id
                                       when parts came first, else a new one)
``agent_response_correction``          ``transcript`` agent, ``final: true``, with the
                                       ``message_id`` of the interrupted response (the
                                       latest agent message whose text is the original)
                                       and the corrected text: it replaces that message
``interruption``                       ``agent_state`` ``listening``
the SDK's mode (the browser client's   ``speaking``: ``agent_state`` ``speaking``;
``onModeChange``: its audio playback)  ``listening``: ``listening``, unless the agent is
                                       ``thinking`` (its speech ended, its work did not)
conversation over                      ``agent_state`` ``idle``
=====================================  ==================================================

An ``agent_state`` is sent only when the state changes. The Python SDK gives no
"mode" (speaking/listening) callback: without audio playback to watch, the agent
speaks from its response until the user's next turn or an interruption. The page that
talks (``static/talk.js``, with the browser client) maps with ``static/voice-frames.js``,
a port of this module; both run ``tests/fixtures/voice``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any, Literal

__all__ = ["ConversationFrames"]

Frame = dict[str, Any]
AgentStateName = Literal["idle", "listening", "thinking", "speaking"]
_REMEMBERED = 32  # agent messages kept to find a correction's original


def _new_id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


class ConversationFrames:
    """One conversation's mapping; ``transcripts=False`` leaves the transcripts out
    (``companion-ws agent --no-transcripts``) and keeps the agent's state."""

    def __init__(self, *, transcripts: bool = True, new_id: Callable[[str], str] = _new_id) -> None:
        self.transcripts = transcripts
        self._new_id = new_id
        self.state: AgentStateName | None = None
        self._user_id: str | None = None  # the user's turn in progress (tentative)
        self._part_id: str | None = None  # the agent message being streamed in parts
        self._part_text = ""
        self._agent: list[tuple[str, str]] = []  # (message_id, text), newest last

    # ------------------------------------------------------------ the agent's state

    def _state(self, state: AgentStateName) -> list[Frame]:
        if state == self.state:
            return []
        self.state = state
        return [{"type": "agent_state", "state": state}]

    def agent_state(self, state: AgentStateName) -> list[Frame]:
        """A platform that reports the agent's state itself (LiveKit's
        ``agent_state_changed``, Pipecat's bot frames): sent when it changes."""
        return self._state(state)

    def ready(self) -> list[Frame]:
        return self._state("listening")

    def interrupted(self) -> list[Frame]:
        return self._state("listening")

    def tool_call(self) -> list[Frame]:
        return self._state("thinking")

    def ended(self) -> list[Frame]:
        return self._state("idle")

    def mode(self, mode: str) -> list[Frame]:
        """The SDK's mode, where it has one (the browser client's ``onModeChange``,
        from its audio playback): ``speaking`` or ``listening``. Playback that ends
        while the agent is ``thinking`` (a tool call under way, an answer being worked
        on) leaves it thinking."""
        if mode == "speaking":
            return self._state("speaking")
        if self.state == "thinking":
            return []
        return self._state("listening")

    # ------------------------------------------------------------ the user

    def _transcript(self, role: str, message_id: str, text: str, final: bool) -> list[Frame]:
        if not self.transcripts:
            return []
        return [
            {
                "type": "transcript",
                "role": role,
                "message_id": message_id,
                "text": text,
                "final": final,
            }
        ]

    def user_partial(self, text: str) -> list[Frame]:
        if self._user_id is None:
            self._user_id = self._new_id("user")
        frames = self._state("listening") if self.state == "speaking" else []
        return frames + self._transcript("user", self._user_id, text, False)

    def user_said(self, text: str) -> list[Frame]:
        message_id = self._user_id or self._new_id("user")
        self._user_id = None
        frames = self._transcript("user", message_id, text, True)
        return frames + self._state("thinking")

    # ------------------------------------------------------------ the agent

    def agent_part(self, text: str, kind: str) -> list[Frame]:
        """``agent_chat_response_part``: ``start``, ``delta`` or ``stop``."""
        if kind == "start" or self._part_id is None:
            self._part_id, self._part_text = self._new_id("agent"), ""
        if kind == "start" and not text:
            return []
        if kind != "stop":
            self._part_text += text
        frames = self._state("speaking")
        return frames + self._transcript("agent", self._part_id, self._part_text, kind == "stop")

    def agent_said(self, text: str, *, speaking: bool = True) -> list[Frame]:
        """The agent's whole response; ``speaking=False`` when the platform reports its
        state itself (the response may be committed after the speech ended)."""
        message_id = self._part_id or self._new_id("agent")
        self._part_id, self._part_text = None, ""
        self._remember(message_id, text)
        frames = self._state("speaking") if speaking else []
        return frames + self._transcript("agent", message_id, text, True)

    def corrected(self, original: str, corrected: str) -> list[Frame]:
        """``agent_response_correction``: the interrupted response, as far as the user
        heard it, replaces that message's text."""
        message_id = next(
            (mid for mid, text in reversed(self._agent) if text.strip() == original.strip()),
            self._agent[-1][0] if self._agent else None,
        )
        if message_id is None:
            message_id = self._new_id("agent")
        self._remember(message_id, corrected)
        return self._transcript("agent", message_id, corrected, True)

    def _remember(self, message_id: str, text: str) -> None:
        self._agent = [(m, t) for m, t in self._agent if m != message_id]
        self._agent.append((message_id, text))
        del self._agent[:-_REMEMBERED]
