"""Server frames (docs/protocol.md section 2): a tagged union on ``type``, the twin of
:mod:`companion_ws.protocol.messages`.

Two families, told apart by the class attribute ``broadcast``:

- **broadcasts** go to every client of a session, each with its place in the session's
  order: the broker splices ``"seq": N`` in front of the encoded frame when it assigns
  the number (:func:`companion_ws.protocol.codec.with_seq`), so they are built here
  without one;
- **direct** frames answer one client (or describe its connection). A ``seq`` field on
  one of them (``session_joined``, ``session_state``, ``resync_required``) is the
  snapshot's position, not the frame's own place in the order.

Only the hub (above the broker) builds frames; the broker carries their bytes. Optional
fields are ``UNSET`` and left out of the JSON; every other field is always written.
"""

from __future__ import annotations

import typing
from typing import Any, ClassVar, Literal, TypeVar

import msgspec
from msgspec import UNSET, UnsetType

from companion_ws.protocol.clock import now_ms

T = TypeVar("T")

__all__ = [
    "BROADCAST_TYPES",
    "DIRECT_TYPES",
    "SERVER_FRAMES",
    "AgentControl",
    "AgentState",
    "BroadcastFrame",
    "ClientJoined",
    "ClientLeft",
    "ClientToolResult",
    "ContextualUpdate",
    "DeviceRevoked",
    "Error",
    "History",
    "Pong",
    "Presence",
    "RefreshRequired",
    "Refreshed",
    "Resumed",
    "ResyncRequired",
    "ServerFrame",
    "SessionEnded",
    "SessionJoined",
    "SessionState",
    "SessionStateUpdated",
    "Step",
    "ToolCallFinished",
    "ToolCallStarted",
    "Transcript",
    "VoiceFloor",
    "opt",
    "tag_of",
]


class _Frame(msgspec.Struct, tag_field="type", kw_only=True, frozen=True):
    session_id: str
    timestamp: int = msgspec.field(default_factory=now_ms)
    requestId: str | UnsetType = UNSET

    broadcast: ClassVar[bool] = False


class _Broadcast(_Frame, frozen=True):
    broadcast: ClassVar[bool] = True


# ---------------------------------------------------------------- broadcasts


class _PresenceChange(_Broadcast, frozen=True):
    connection_id: str
    user_id: str
    client: str
    role: str
    device_id: str


class ClientJoined(_PresenceChange, tag="client_joined", frozen=True):
    pass


class ClientLeft(_PresenceChange, tag="client_left", frozen=True):
    pass


class SessionStateUpdated(_Broadcast, tag="session_state_updated", frozen=True):
    patch: Any
    version: int
    sender: str | None = None


class ContextualUpdate(_Broadcast, tag="contextual_update", frozen=True):
    text: str
    data: Any = None
    sender: str | None = None


class SessionEnded(_Broadcast, tag="session_ended", frozen=True):
    reason: str


class DeviceRevoked(_Broadcast, tag="device_revoked", frozen=True):
    """The owner revoked a joined device: its connections are closed 4403."""

    device_id: str


# The conversation on every screen (docs/protocol.md section 13).

TranscriptRole = Literal["user", "agent"]
AgentStateName = Literal["idle", "listening", "thinking", "speaking"]
StepStatus = Literal["started", "done", "failed"]


class Transcript(_Broadcast, tag="transcript", frozen=True):
    """One message of the conversation; a later one with the same ``message_id``
    replaces its text (streaming partials, corrections)."""

    role: TranscriptRole
    message_id: str
    text: str
    final: bool
    sender: str | None = None


class AgentState(_Broadcast, tag="agent_state", frozen=True):
    state: AgentStateName
    sender: str | None = None


class Step(_Broadcast, tag="step", frozen=True):
    """The seeds' "thinking steps": intent recognition, tool execution, ..."""

    step_id: str
    name: str
    status: StepStatus
    detail: str | UnsetType = UNSET
    sender: str | None = None


class ToolCallStarted(_Broadcast, tag="tool_call_started", frozen=True):
    """A tool run begins (any path); broadcast before its state change."""

    tool_call_id: str
    tool_name: str


class ToolCallFinished(_Broadcast, tag="tool_call_finished", frozen=True):
    """A tool run ended; broadcast after its state change."""

    tool_call_id: str
    tool_name: str
    is_error: bool
    duration_ms: int


# The voice floor (docs/protocol.md section 17).

VoiceFloorReason = Literal["taken", "released", "gone", "ended"]
ControlAction = Literal["interrupt", "mute", "unmute", "end"]


class VoiceFloor(_Broadcast, tag="voice_floor", frozen=True):
    """Who holds the voice conversation now (``device_id`` None: nobody), and who held
    it before; ``reason`` says how it changed."""

    device_id: str | None
    connection_id: str | None
    previous_device_id: str | None
    reason: VoiceFloorReason
    sender: str | None = None


class AgentControl(_Broadcast, tag="agent_control", frozen=True):
    """A screen steers the holder's conversation: the holder applies ``action``."""

    action: ControlAction
    device_id: str  # the holder it is for
    sender: str | None = None


# ---------------------------------------------------------------- direct


class SessionJoined(_Frame, tag="session_joined", frozen=True):
    connection_id: str
    user_id: str
    created: bool
    resumed: bool
    seq: int
    epoch: str
    state_version: int
    clients: int
    reconnect_token: str | None
    role: str
    device_id: str
    agent_capability: str | UnsetType = UNSET  # agent role only: the ElevenLabs session_id
    requested_session_id: str | UnsetType = UNSET
    reason: str | UnsetType = UNSET
    restored_from: str | UnsetType = UNSET  # the session whose state this one carries
    voice_floor: dict[str, str] | None = None  # section 17: the holder, or null


class SessionState(_Frame, tag="session_state", frozen=True):
    state: dict[str, Any]
    version: int
    seq: int


class ResyncRequired(_Frame, tag="resync_required", frozen=True):
    state: dict[str, Any]
    version: int
    seq: int
    epoch: str


class Resumed(_Frame, tag="resumed", frozen=True):
    from_seq: int
    to_seq: int
    replayed: int


class History(_Frame, tag="history", frozen=True):
    events: list[Any]
    after_seq: int
    next_after_seq: int
    latest_seq: int
    epoch: str
    has_more: bool


class Presence(_Frame, tag="presence", frozen=True):
    clients: list[dict[str, Any]]


class Pong(_Frame, tag="pong", frozen=True):
    pass


class ClientToolResult(_Frame, tag="client_tool_result", frozen=True):
    tool_call_id: str
    result: str  # JSON text, as the ElevenLabs protocol wants
    is_error: bool


class RefreshRequired(_Frame, tag="refresh_required", frozen=True):
    """The connection's credential expires at ``expires_at`` (ms): send ``refresh``."""

    expires_at: int


class Refreshed(_Frame, tag="refreshed", frozen=True):
    expires_at: int


class Error(_Frame, tag="error", frozen=True, kw_only=True):
    session_id: str | UnsetType = UNSET  # type: ignore[assignment]  # none before a join
    code: str
    message: str
    retryable: bool | UnsetType = UNSET
    version: int | UnsetType = UNSET  # version_conflict: the current version
    size: int | UnsetType = UNSET  # state_too_large
    limit: int | UnsetType = UNSET


#: The frames the publisher broadcasts (the broker gives each its ``seq``).
BroadcastFrame = (
    ClientJoined
    | ClientLeft
    | SessionStateUpdated
    | ContextualUpdate
    | SessionEnded
    | DeviceRevoked
    | Transcript
    | AgentState
    | Step
    | ToolCallStarted
    | ToolCallFinished
    | VoiceFloor
    | AgentControl
)

ServerFrame = (
    BroadcastFrame
    | SessionJoined
    | SessionState
    | ResyncRequired
    | Resumed
    | History
    | Presence
    | Pong
    | ClientToolResult
    | RefreshRequired
    | Refreshed
    | Error
)

SERVER_FRAMES: tuple[type[_Frame], ...] = typing.get_args(ServerFrame)


def tag_of(cls: type[_Frame]) -> str:
    """The ``type`` a frame class is written with."""
    return str(cls.__struct_config__.tag)


def opt(value: T | None) -> T | UnsetType:
    """An optional field: left out of the frame when there is no value."""
    return UNSET if value is None else value


#: The frames with a place in the session's order (they carry ``seq``).
BROADCAST_TYPES: frozenset[str] = frozenset(tag_of(c) for c in SERVER_FRAMES if c.broadcast)
#: The frames for one client; a ``seq`` on one of them is a snapshot position.
DIRECT_TYPES: frozenset[str] = frozenset(tag_of(c) for c in SERVER_FRAMES if not c.broadcast)
