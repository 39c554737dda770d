"""The conversation service: a session's messages (docs/protocol.md section 13), projected
from the ``transcript`` events of its durable event log by :mod:`ui_state.conversation`.

The log is read in pages of :data:`READ_PAGE` events, so memory holds one page and the
answer (at most ``limit`` messages), however long the conversation.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from companion_ws.protocol.codec import decode_json
from companion_ws.store.eventlog import EventLog
from companion_ws.store.store import Store
from ui_state.conversation import TRANSCRIPT, Conversation

__all__ = ["READ_PAGE", "ConversationService", "Messages"]

READ_PAGE = 500


@dataclass(frozen=True, slots=True)
class Messages:
    messages: list[dict[str, Any]]
    #: More messages follow: ask again with ``after_seq`` = the last message's seq.
    has_more: bool


class ConversationService:
    def __init__(self, store: Store, eventlog: EventLog) -> None:
        self._store = store
        self._eventlog = eventlog

    async def messages(self, session_id: str, *, after_seq: int, limit: int) -> Messages:
        """The messages first said after ``after_seq`` (at most ``limit``), each with
        every later correction applied."""
        await self._eventlog.flush()  # what this process published is in the log
        conversation = Conversation(after_seq=after_seq, limit=limit)
        cursor = 0  # from the start: a correction can follow its message by any distance
        while True:
            async with self._store.uow() as uow:
                rows = await uow.events.of_type(session_id, TRANSCRIPT, cursor, READ_PAGE)
            conversation.extend(decode_json(row.payload) for row in rows)
            if len(rows) < READ_PAGE:
                break
            cursor = rows[-1].seq
        return Messages(conversation.messages(), conversation.has_more)
