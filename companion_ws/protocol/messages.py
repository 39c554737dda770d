"""Client messages (docs/protocol.md section 3): a tagged union on ``type``.

Frozen structs. Fields the hub does not know are ignored (a newer client keeps working
with an older hub, docs/protocol.md v1.1); a known field of the wrong type is refused.
``requestId`` is at most 128 characters.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec

RequestId = Annotated[str, msgspec.Meta(max_length=128)]
NonNegative = Annotated[int, msgspec.Meta(ge=0)]
JSONObject = dict[str, Any]


class _Message(msgspec.Struct, tag_field="type", frozen=True, kw_only=True):
    requestId: RequestId | None = None


class Ping(_Message, tag="ping", frozen=True):
    pass


class GetSessionState(_Message, tag="get_session_state", frozen=True):
    pass


class UpdateSessionState(_Message, tag="update_session_state", frozen=True):
    key: Annotated[str, msgspec.Meta(min_length=1, max_length=256)] | None = None
    value: Any = msgspec.UNSET
    patch: JSONObject | None = None
    expected_version: NonNegative | None = None


class ContextualUpdate(_Message, tag="contextual_update", frozen=True):
    text: Annotated[str, msgspec.Meta(max_length=1024)]
    data: Any = None


class ToolCall(msgspec.Struct, frozen=True, kw_only=True):
    tool_name: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    tool_call_id: Annotated[str, msgspec.Meta(min_length=1, max_length=256)]
    parameters: JSONObject = msgspec.field(default_factory=dict)
    event_id: int | None = None


class ClientToolCall(_Message, tag="client_tool_call", frozen=True):
    client_tool_call: ToolCall
    metadata: JSONObject | None = None


class Resume(_Message, tag="resume", frozen=True):
    last_seq: NonNegative
    epoch: str | None = None


class GetHistory(_Message, tag="get_history", frozen=True):
    after_seq: NonNegative = 0
    limit: Annotated[int, msgspec.Meta(ge=1, le=1000)] = 100


class GetPresence(_Message, tag="get_presence", frozen=True):
    pass


class EndSession(_Message, tag="end_session", frozen=True):
    pass


class Refresh(_Message, tag="refresh", frozen=True):
    """A new credential for this connection (docs/protocol.md section 12)."""

    token: Annotated[str, msgspec.Meta(min_length=1, max_length=8192)]


# The agent's frames (docs/protocol.md section 13): owner, agent and service connections.

MessageId = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]


class Transcript(_Message, tag="transcript", frozen=True):
    """One message of the conversation; a later one with the same ``message_id``
    replaces its text."""

    role: Literal["user", "agent"]
    message_id: MessageId
    text: Annotated[str, msgspec.Meta(max_length=16384)]
    final: bool = True


class AgentState(_Message, tag="agent_state", frozen=True):
    state: Literal["idle", "listening", "thinking", "speaking"]


class Step(_Message, tag="step", frozen=True):
    step_id: MessageId
    name: Name
    status: Literal["started", "done", "failed"]
    detail: Annotated[str, msgspec.Meta(max_length=1024)] | None = None


# The voice floor (docs/protocol.md section 17).


class TakeVoice(_Message, tag="take_voice", frozen=True):
    pass


class ReleaseVoice(_Message, tag="release_voice", frozen=True):
    pass


class AgentControl(_Message, tag="agent_control", frozen=True):
    action: Literal["interrupt", "mute", "unmute", "end"]


ClientMessage = (
    Ping
    | GetSessionState
    | UpdateSessionState
    | ContextualUpdate
    | ClientToolCall
    | Resume
    | GetHistory
    | GetPresence
    | EndSession
    | Refresh
    | Transcript
    | AgentState
    | Step
    | TakeVoice
    | ReleaseVoice
    | AgentControl
)

MESSAGE_TYPES: frozenset[str] = frozenset(
    str(cls.__struct_config__.tag)
    for cls in (
        Ping,
        GetSessionState,
        UpdateSessionState,
        ContextualUpdate,
        ClientToolCall,
        Resume,
        GetHistory,
        GetPresence,
        EndSession,
        Refresh,
        Transcript,
        AgentState,
        Step,
        TakeVoice,
        ReleaseVoice,
        AgentControl,
    )
)
