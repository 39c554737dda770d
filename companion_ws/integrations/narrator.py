"""``Narrator``: what the voice agent is told about its session, in plain words.

It reads the frames of the bridge's hub client (its ``events()``) against that client's
:class:`~companion_ws.client.SessionMirror`: the state is the mirror's, never a second
copy. The mirror has applied each frame before the narrator reads it, maybe later
ones too, so the narrator reads a patch's own keys from the patch.

- A state change or a ``contextual_update`` made by someone else (a screen, a backend)
  is one sentence (``ui_state.describe_change``, :func:`describe_update`).
- Back after a reconnect, the changes the replay brings are summed up once, after it
  (``ui_state.create_session_context``, quoting the conversation's last messages, from
  the ``transcript`` frames the bridge has seen); so is a ``resync_required``
  snapshot, and the state the mirror fetched after it missed a change.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from companion_ws.client import CompanionClient
from ui_state import create_session_context, describe_change, merge_patch
from ui_state.summary import LAST_MESSAGES

__all__ = ["AGENT_SENDER_PREFIX", "Narrator", "describe_update"]

#: Senders whose events the agent caused itself (ElevenLabs server tools, post-call).
AGENT_SENDER_PREFIX = "elevenlabs:"
_DATA_MAX = 600


def describe_update(frame: Mapping[str, Any]) -> str:
    """A ``contextual_update`` from a screen or a backend, in words for the agent."""
    sender = str(frame.get("sender") or "")
    source = "the backend" if sender.startswith("backend") else "the screen"
    words = f"Update from {source}: {frame.get('text')}"
    data = frame.get("data")
    if data not in (None, {}, [], ""):
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        words += f" ({text if len(text) <= _DATA_MAX else text[:_DATA_MAX] + '...'})"
    return words


class Narrator:
    """Turns the session's frames into sentences for the agent; ``ended`` once the
    session is over (ended, or the hub put the client in another session)."""

    def __init__(self, client: CompanionClient, session_id: str) -> None:
        self.client = client
        self.session_id = session_id
        self.own: set[str] = set()  # this bridge's connections, one per (re)connect
        self.ended = False
        self._catching_up = False  # back after a reconnect, until the replay ends
        self._missed = False  # the replay brought changes made by others
        self._behind = False  # a change the mirror missed: it is reading the state
        self._told_version = 0  # the newest state version the agent has heard of
        # The conversation's last messages (transcript frames, corrections applied), for
        # the summary to quote: by message id, oldest first, at most LAST_MESSAGES.
        self._recent: dict[str, dict[str, Any]] = {}

    def started(self) -> list[str]:
        """The client is in the session: what the agent should hear first."""
        if self.client.connection_id:
            self.own.add(self.client.connection_id)
        return [self._summary()] if self.client.state else []

    def read(self, frame: Mapping[str, Any]) -> list[str]:
        """What to tell the agent about one frame (usually nothing)."""
        match frame.get("type"):
            case "session_joined":
                self._welcomed(frame)
            case "resumed":
                missed, self._catching_up = self._catching_up and self._missed, False
                return [self._summary()] if missed else []
            case "resync_required":
                self._catching_up = False
                return [self._summary()]
            case "session_state" if self._behind:
                self._behind = False  # the state the mirror fetched after missing a change
                return [self._summary()]
            case "session_state_updated":
                return self._changed(frame)
            case "contextual_update" if self._foreign(frame):
                if not self._catching_up:
                    return [describe_update(frame)]
                self._missed = True
            case "transcript":
                self._heard(frame)
            case "session_ended":
                self.ended = True
        return []

    def _heard(self, frame: Mapping[str, Any]) -> None:
        message_id = frame.get("message_id")
        if not isinstance(message_id, str):
            return
        said = {"role": frame.get("role"), "text": frame.get("text")}
        if message_id in self._recent:
            self._recent[message_id].update(said)  # a partial grown, or a correction
            return
        self._recent[message_id] = said
        if len(self._recent) > LAST_MESSAGES:
            del self._recent[next(iter(self._recent))]

    def _welcomed(self, frame: Mapping[str, Any]) -> None:
        connection = frame.get("connection_id")
        if connection in self.own:
            return  # the first welcome
        if isinstance(connection, str):
            self.own.add(connection)
        if frame.get("session_id") != self.session_id:
            self.ended = True  # the session is gone: the hub started another one
            return
        # Back after a reconnect: the replay (or a snapshot) follows.
        self._catching_up, self._missed = True, False

    def _changed(self, frame: Mapping[str, Any]) -> list[str]:
        version, patch = frame.get("version"), frame.get("patch")
        if not isinstance(version, int) or version <= self._told_version:
            return []  # older than what the agent has heard of
        if self.client.version < version or not isinstance(patch, Mapping):
            self._behind = True  # the mirror skipped a version and fetches the state
            return []
        self._told_version = version
        if not self._foreign(frame):
            return []
        if self._catching_up:
            self._missed = True
            return []
        # The mirror may be past this frame; the patch's keys (all describe_change reads)
        # are as this frame set them.
        text = describe_change(patch, merge_patch(self.client.state, patch))
        return [text] if text else []

    def _foreign(self, frame: Mapping[str, Any]) -> bool:
        """Made by someone else than this bridge (or the agent's own server tools)."""
        sender = frame.get("sender")
        if isinstance(sender, str) and sender.startswith(AGENT_SENDER_PREFIX):
            return False
        return sender not in self.own

    def _summary(self) -> str:
        """The whole session, as the mirror has it now."""
        self._told_version = max(self._told_version, self.client.version)
        return create_session_context(self.client.state, list(self._recent.values()))
