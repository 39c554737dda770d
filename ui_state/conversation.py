"""The conversation of a session (docs/protocol.md section 13): its ``transcript`` events,
folded in seq order into messages, corrections applied. Pure: events in, messages out.

A message takes its place, ``seq`` and ``timestamp`` from the first event with its
``message_id``; a later event with the same id replaces its ``text`` and ``final``
(streaming partials, and ElevenLabs' ``agent_response_correction`` after an
interruption). Its ``role`` is the first event's. An event without every field of
section 13 (``role`` user or agent, ``message_id``, ``text``, ``final``) or without a
positive ``seq`` is dropped whole: it neither makes nor revises a message.
``static/conversation.js`` folds the same way; ``tests/fixtures/conversation`` holds
both to it.

It also marks where the voice moved (section 17): a ``voice_floor`` event naming a
holder device other than the one before it is a move, ``{"kind": "voice_moved",
"from", "to", "seq", "timestamp"}`` (``from`` None: the floor was free); a release, an
end, or the same device taking it again moves nothing. ``static/conversation.js``
(the ``@companion-ws/client`` package's fold) marks the same moves.

The fold is bounded for long sessions: it keeps at most ``limit`` messages (those first
seen after ``after_seq``); of the messages before that it remembers only the ids, so
that their corrections are not taken for new messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, TypeGuard

__all__ = ["TRANSCRIPT", "VOICE_FLOOR", "Conversation", "messages_of", "voice_moves_of"]

TRANSCRIPT = "transcript"
VOICE_FLOOR = "voice_floor"
ROLES = frozenset({"user", "agent"})

Message = dict[str, Any]


class Conversation:
    def __init__(self, *, after_seq: int = 0, limit: int | None = None) -> None:
        self._after_seq = after_seq
        self._limit = limit
        self._messages: dict[str, Message] = {}
        self._before: set[str] = set()  # ids first seen at or before after_seq
        self.has_more = False  # a message past the limit was seen (and left out)
        self._moves: list[Message] = []

    def add(self, event: Mapping[str, Any]) -> None:
        """Fold one event in (events come in seq order; any other kind is ignored)."""
        if event.get("type") == VOICE_FLOOR:
            self._moved(event)
            return
        if event.get("type") != TRANSCRIPT or not _well_formed(event):
            return
        message_id = event["message_id"]
        kept = self._messages.get(message_id)
        if kept is not None:
            kept["text"], kept["final"] = event["text"], event["final"]
            return
        if message_id in self._before:
            return
        if event["seq"] <= self._after_seq:
            self._before.add(message_id)
            return
        if self._limit is not None and len(self._messages) >= self._limit:
            self.has_more = True  # its corrections land here too, and are left out alike
            return
        self._messages[message_id] = {
            "message_id": message_id,
            "role": event["role"],
            "text": event["text"],
            "final": event["final"],
            "seq": event["seq"],
            "timestamp": event.get("timestamp"),
        }

    def _moved(self, event: Mapping[str, Any]) -> None:
        to, seq, before = event.get("device_id"), event.get("seq"), event.get("previous_device_id")
        if not isinstance(to, str) or to == before or not _is_seq(seq) or seq <= self._after_seq:
            return
        self._moves.append(
            {
                "kind": "voice_moved",
                "from": before if isinstance(before, str) else None,
                "to": to,
                "seq": seq,
                "timestamp": event.get("timestamp"),
            }
        )

    def extend(self, events: Iterable[Mapping[str, Any]]) -> None:
        for event in events:
            self.add(event)

    def messages(self) -> list[Message]:
        """The messages, in order of first appearance (copies)."""
        return [dict(m) for m in self._messages.values()]

    def voice_moves(self) -> list[Message]:
        """Where the voice moved, in seq order (copies)."""
        return [dict(m) for m in self._moves]


def messages_of(events: Iterable[Mapping[str, Any]]) -> list[Message]:
    """Every message of ``events`` (a whole, short log), corrections applied."""
    conversation = Conversation()
    conversation.extend(events)
    return conversation.messages()


def _well_formed(event: Mapping[str, Any]) -> bool:
    return (
        isinstance(event.get("message_id"), str)
        and event.get("role") in ROLES
        and isinstance(event.get("text"), str)
        and isinstance(event.get("final"), bool)
        and _is_seq(event.get("seq"))
    )


def _is_seq(value: Any) -> TypeGuard[int]:
    """A broadcast's seq: a positive integer (a bool is no seq)."""
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def voice_moves_of(events: Iterable[Mapping[str, Any]]) -> list[Message]:
    """Every move of the voice in ``events`` (section 17)."""
    conversation = Conversation()
    conversation.extend(events)
    return conversation.voice_moves()
