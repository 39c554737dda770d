"""One client connection of a session, as the node and the hub see it.

Broadcast frames arrive with their seq; the connection remembers the last seq it
queued (``cursor``) and drops anything at or below it, so a frame is never sent twice.
While a replay or a join is under way the connection *holds* live frames and releases
those newer than the replay when it ends, so none slips in between.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from companion_ws.auth.policy import Role
from companion_ws.auth.tokens import Principal
from companion_ws.hub.outbox import Outbox
from companion_ws.hub.ratelimit import TokenBucket
from companion_ws.protocol.closecodes import Close


@dataclass(eq=False, slots=True)
class Connection:
    id: str
    session_id: str
    principal: Principal
    client: str
    outbox: Outbox
    cursor: int = 0
    held: list[tuple[int, str, str]] | None = field(default_factory=list)
    epoch: str = ""  # the history ``cursor`` counts in
    bucket: TokenBucket | None = None  # made on the first frame: idle sockets need none
    ended: bool = False  # its session ended: it leaves without a ``client_left``
    announced_gone: bool = False  # another process announced its ``client_left`` already
    role: Role = Role.OWNER  # docs/protocol.md section 11, fixed by the credential
    device_id: str = ""
    frames_in: int = 0  # frames the client sent (counted by the endpoint)
    frames_out: int = 0  # frames queued for it (for the ``closed`` log line)

    @property
    def user_id(self) -> str:
        return self.principal.sub

    def info(self) -> dict[str, Any]:
        return {
            "connection_id": self.id,
            "user_id": self.user_id,
            "client": self.client,
            "role": self.role,
            "device_id": self.device_id,
        }

    def send(self, text: str) -> None:
        """A frame for this client only (a reply, the welcome)."""
        self.frames_out += 1
        self.outbox.push(text)

    def deliver(self, seq: int, epoch: str, text: str, framed: bytes | None = None) -> bool:
        """A broadcast frame. On a gap (it skips ahead of the cursor, or comes from a new
        history that does not go on right after the cursor: the broker lost its own and
        restarted the numbering) the connection starts holding and returns False: the
        node replays what is missing or resyncs, then releases."""
        if self.held is not None:
            if self.outbox.reserve(len(text)):
                self.held.append((seq, epoch, text))
            else:
                self.held = []  # cut off 4409: nothing held is sent any more
            return True
        if epoch != self.epoch:
            if seq != self.cursor + 1:
                self._hold_from(seq, epoch, text)
                return False
            # The broker re-created the history and its numbering goes on right after
            # this client's: nothing was missed, and no number means two things to it.
            self.epoch = epoch
        elif seq > self.cursor + 1:
            self._hold_from(seq, epoch, text)
            return False
        if seq <= self.cursor:
            return True
        self.cursor = seq
        self.frames_out += 1
        self.outbox.push(text, framed)
        return True

    def end_session(self) -> None:
        """Its session ended (``session_ended`` is being delivered): close 4410 after
        that frame, which may still be held back by a join or a replay."""
        self.ended = True
        if self.held is None:
            self.outbox.close(Close.SESSION_ENDED, "session ended")

    def _hold_from(self, seq: int, epoch: str, text: str) -> None:
        self.held = [(seq, epoch, text)] if self.outbox.reserve(len(text)) else []

    def hold(self) -> None:
        if self.held is None:
            self.held = []

    def release(self, cursor: int, epoch: str) -> None:
        """End a hold: the client has everything up to ``cursor`` of history ``epoch``;
        send the held frames of that history after it, in order."""
        held, self.held = self.held or [], None
        self.outbox.held_bytes = 0  # pushed now, or dropped: counted in the queue from here
        self.cursor = cursor
        self.epoch = epoch
        for seq, frame_epoch, text in sorted(held, key=lambda item: item[0]):
            if seq > self.cursor and frame_epoch == epoch:
                self.cursor = seq
                self.frames_out += 1
                self.outbox.push(text)
        if self.ended:
            self.outbox.close(Close.SESSION_ENDED, "session ended")
