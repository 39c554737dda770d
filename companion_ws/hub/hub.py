"""The local registry: this process's connections, by session. Delivers an event to
every local connection of its session with one decode of the payload and one frame."""

from __future__ import annotations

from collections.abc import Iterator

from companion_ws.hub.connection import Connection
from companion_ws.protocol.wire import text_frame
from companion_ws.values import Event


class Hub:
    def __init__(self) -> None:
        self._sessions: dict[str, dict[str, Connection]] = {}

    def add(self, conn: Connection) -> bool:
        """Register; True when it is the session's first local connection."""
        members = self._sessions.setdefault(conn.session_id, {})
        members[conn.id] = conn
        return len(members) == 1

    def remove(self, conn: Connection) -> bool:
        """Unregister; True when it was the session's last local connection."""
        members = self._sessions.get(conn.session_id)
        if members is None or members.pop(conn.id, None) is None:
            return False
        if not members:
            del self._sessions[conn.session_id]
            return True
        return False

    def connections(self, session_id: str) -> list[Connection]:
        return list(self._sessions.get(session_id, {}).values())

    def count(self, session_id: str) -> int:
        return len(self._sessions.get(session_id, ()))

    def sessions(self) -> Iterator[str]:
        return iter(list(self._sessions))

    def __len__(self) -> int:
        return sum(len(m) for m in self._sessions.values())

    def deliver(self, event: Event) -> list[Connection]:
        """Hand the event to each local connection; returns those that saw a gap."""
        members = self._sessions.get(event.session_id)
        if not members:
            return []
        text = event.payload.decode()
        framed = text_frame(event.payload)  # one frame for every socket that takes it now
        seq, epoch = event.seq, event.epoch
        return [conn for conn in members.values() if not conn.deliver(seq, epoch, text, framed)]
