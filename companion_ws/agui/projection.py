"""The AG-UI projection of one session: the hub's broadcast frames, in seq order, in and
AG-UI protocol events (``ag_ui.core``) out. Pure: no I/O, no clock, no randomness.

A stream opens with ``RUN_STARTED`` (``threadId`` = the session id), then either the
opening snapshots (:meth:`Projection.opening`: ``STATE_SNAPSHOT`` and
``MESSAGES_SNAPSHOT``) or, on a resume, the frames after the client's seq. Each frame
then maps so:

=========================  ==========================================================
native frame               AG-UI events
=========================  ==========================================================
``session_state_updated``  ``STATE_DELTA``: the RFC 6902 operations equivalent to the
                           merge patch, against the state this stream has reached
                           (:func:`~companion_ws.agui.patches.merge_patch_ops`); none
                           when the patch changes nothing
``transcript``             a new ``message_id``: ``TEXT_MESSAGE_START`` (role ``user``
                           or ``assistant``), ``TEXT_MESSAGE_CONTENT`` with its text,
                           and ``TEXT_MESSAGE_END`` once ``final``. A later partial
                           that extends the text of a message still open in this
                           stream: ``TEXT_MESSAGE_CONTENT`` with the new characters
                           (``TEXT_MESSAGE_END`` when final). Any other replacement (a
                           partial that rewrites earlier words, an
                           ``agent_response_correction`` of a finished message, or a
                           message this stream did not open): ``MESSAGES_SNAPSHOT``
                           with the conversation as it now is, since AG-UI has no
                           event that edits a message in place
``tool_call_started``      ``TOOL_CALL_START`` (parent message
                           ``tool_call:<id>``) and ``TOOL_CALL_END``: the call's
                           arguments are complete when it starts running (the hub
                           broadcasts none, so there is no ``TOOL_CALL_ARGS``)
``tool_call_finished``     ``TOOL_CALL_RESULT`` (message ``tool_result:<id>``, content
                           ``{"tool_name", "is_error", "duration_ms"}`` as JSON text)
``step``                   ``started``: ``STEP_STARTED``; ``done`` / ``failed``:
                           ``STEP_FINISHED`` (preceded by ``STEP_STARTED`` when this
                           stream never saw the step start); the native frame rides in
                           ``rawEvent`` (``step_id``, ``status``, ``detail``)
``session_ended``          ``CUSTOM`` ``session_ended``, then ``RUN_FINISHED``
anything else              ``CUSTOM`` with ``name`` = the frame's type and ``value`` =
                           the frame (``agent_state``, ``contextual_update``,
                           ``client_joined``, ``client_left``, ``device_revoked``...)
=========================  ==========================================================

The messages (``MESSAGES_SNAPSHOT``) are the conversation with every replacement
applied, in order of first appearance: user and assistant text messages, and for each
tool run an assistant message holding the call and a tool message holding its result,
as an AG-UI client builds them from the events above.

State on a resume: the changes between the client's seq and the state snapshot the
stream starts from are not sent as deltas (the state at the client's seq is not kept
anywhere); they are folded into one ``STATE_SNAPSHOT`` sent with (first among) the events of
the frame at the snapshot's seq. From there on, every change is a ``STATE_DELTA``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ag_ui.core import (
    AssistantMessage,
    BaseEvent,
    CustomEvent,
    FunctionCall,
    Message,
    MessagesSnapshotEvent,
    RunErrorEvent,
    RunFinishedEvent,
    RunStartedEvent,
    StateDeltaEvent,
    StateSnapshotEvent,
    StepFinishedEvent,
    StepStartedEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
    ToolCall,
    ToolCallEndEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
    ToolMessage,
    UserMessage,
)

from companion_ws.agui.patches import merge_patch_ops
from ui_state import merge_patch

__all__ = ["Projection", "call_message_id", "result_message_id"]

Frame = Mapping[str, Any]


def call_message_id(tool_call_id: str) -> str:
    """The assistant message that holds a tool call."""
    return f"tool_call:{tool_call_id}"


def result_message_id(tool_call_id: str) -> str:
    """The tool message that holds a tool call's result."""
    return f"tool_result:{tool_call_id}"


@dataclass
class _Text:
    role: str  # "user" | "assistant"
    text: str
    final: bool


@dataclass
class _Call:
    tool_call_id: str
    tool_name: str


@dataclass
class _Result:
    tool_call_id: str
    content: str
    is_error: bool


@dataclass
class Projection:
    """One AG-UI stream of one session. Feed it the session's frames in seq order: the
    history before the stream starts with :meth:`fold`, the rest with :meth:`project`."""

    session_id: str
    run_id: str
    state: Any = None
    state_seq: int = 0  # the seq ``state`` is at: state frames up to it are in it
    ended: bool = False
    _messages: dict[str, _Text | _Call | _Result] = field(default_factory=dict)
    _open_text: set[str] = field(default_factory=set)  # started here, not yet ended
    _open_steps: dict[str, str] = field(default_factory=dict)  # step_id -> stepName
    _announced_calls: set[str] = field(default_factory=set)  # TOOL_CALL_START sent here
    _state_pending: bool = False  # a change folded into the state not yet sent

    # ------------------------------------------------------------ the stream's start

    def fold(self, frame: Frame) -> None:
        """A frame from before the stream's start: remember the conversation, send
        nothing (the opening snapshots carry it, or the client has it already)."""
        match frame.get("type"):
            case "transcript":
                self._remember_text(frame)
            case "tool_call_started":
                self._remember_call(frame)
            case "tool_call_finished":
                self._remember_result(frame)
            case "session_ended":
                self.ended = True

    def start_at(self, state: Any, seq: int) -> None:
        """The state the stream starts from, consistent with ``seq``."""
        self.state, self.state_seq = state, seq

    def run_started(self, timestamp: int | None = None) -> BaseEvent:
        return RunStartedEvent(thread_id=self.session_id, run_id=self.run_id, timestamp=timestamp)

    def opening(self, timestamp: int | None = None) -> list[BaseEvent]:
        """``RUN_STARTED``, ``STATE_SNAPSHOT`` and ``MESSAGES_SNAPSHOT``."""
        return [
            self.run_started(timestamp),
            StateSnapshotEvent(snapshot=self.state, timestamp=timestamp),
            self.messages_snapshot(timestamp),
        ]

    def finished(self, timestamp: int | None = None) -> BaseEvent:
        return RunFinishedEvent(thread_id=self.session_id, run_id=self.run_id, timestamp=timestamp)

    def error(self, code: str, message: str) -> BaseEvent:
        return RunErrorEvent(code=code, message=message)

    def messages(self) -> list[Message]:
        """The conversation, every replacement applied, in order of first appearance."""
        out: list[Message] = []
        for message_id, entry in self._messages.items():
            if isinstance(entry, _Text):
                if entry.role == "user":
                    out.append(UserMessage(id=message_id, content=entry.text))
                else:
                    out.append(AssistantMessage(id=message_id, content=entry.text))
            elif isinstance(entry, _Call):
                call = ToolCall(
                    id=entry.tool_call_id,
                    function=FunctionCall(name=entry.tool_name, arguments="{}"),
                )
                out.append(AssistantMessage(id=message_id, tool_calls=[call]))
            else:
                out.append(
                    ToolMessage(
                        id=message_id,
                        tool_call_id=entry.tool_call_id,
                        content=entry.content,
                        error=entry.content if entry.is_error else None,
                    )
                )
        return out

    def messages_snapshot(self, timestamp: int | None = None) -> BaseEvent:
        return MessagesSnapshotEvent(messages=self.messages(), timestamp=timestamp)

    # ------------------------------------------------------------ live

    def project(self, frame: Frame) -> list[BaseEvent]:
        """The AG-UI events of one frame (after the stream's start)."""
        seq = frame.get("seq")
        at = frame.get("timestamp")
        ts = at if isinstance(at, int) else None
        events: list[BaseEvent]
        match frame.get("type"):
            case "session_state_updated":
                events = self._state_changed(frame, seq, ts)
            case "transcript":
                events = self._transcript(frame, ts)
            case "tool_call_started":
                events = self._call_started(frame, ts)
            case "tool_call_finished":
                events = self._call_finished(frame, ts)
            case "step":
                events = self._step(frame, ts)
            case "session_ended":
                self.ended = True
                events = [self._custom(frame, ts), self.finished(ts)]
            case _:
                events = [self._custom(frame, ts)]
        if self._state_pending and isinstance(seq, int) and seq >= self.state_seq:
            self._state_pending = False
            events.insert(0, StateSnapshotEvent(snapshot=self.state, timestamp=ts))
        return events

    def _custom(self, frame: Frame, ts: int | None) -> BaseEvent:
        return CustomEvent(name=str(frame.get("type")), value=dict(frame), timestamp=ts)

    def _state_changed(self, frame: Frame, seq: Any, ts: int | None) -> list[BaseEvent]:
        if not isinstance(seq, int) or seq <= self.state_seq:
            self._state_pending = True  # already in the state this stream starts from
            return []
        patch = frame.get("patch")
        ops = merge_patch_ops(self.state, patch)
        self.state, self.state_seq = merge_patch(self.state, patch), seq
        if not ops:
            return []
        return [StateDeltaEvent.model_validate({"delta": ops, "timestamp": ts})]

    # ------------------------------------------------------------ the conversation

    def _remember_text(self, frame: Frame) -> tuple[_Text | None, _Text]:
        """Store a transcript; returns the message as it was (None if new) and is."""
        message_id = str(frame.get("message_id"))
        role = "user" if frame.get("role") == "user" else "assistant"
        before = self._messages.get(message_id)
        old = before if isinstance(before, _Text) else None
        new = _Text(role, str(frame.get("text") or ""), bool(frame.get("final")))
        self._messages[message_id] = new
        return (_Text(old.role, old.text, old.final) if old else None), new

    def _transcript(self, frame: Frame, ts: int | None) -> list[BaseEvent]:
        message_id = str(frame.get("message_id"))
        old, new = self._remember_text(frame)
        events: list[BaseEvent] = []
        if old is None:
            role: Literal["user", "assistant"] = "user" if new.role == "user" else "assistant"
            events.append(TextMessageStartEvent(message_id=message_id, role=role, timestamp=ts))
            if new.text:
                events.append(
                    TextMessageContentEvent(message_id=message_id, delta=new.text, timestamp=ts)
                )
            self._open_text.add(message_id)
        elif (
            message_id in self._open_text and old.role == new.role and new.text.startswith(old.text)
        ):
            delta = new.text[len(old.text) :]
            if delta:
                events.append(
                    TextMessageContentEvent(message_id=message_id, delta=delta, timestamp=ts)
                )
        elif (old.role, old.text) != (new.role, new.text):
            events.append(self.messages_snapshot(ts))
        if new.final and message_id in self._open_text:
            self._open_text.discard(message_id)
            events.append(TextMessageEndEvent(message_id=message_id, timestamp=ts))
        return events

    def _remember_call(self, frame: Frame) -> bool:
        """Store a tool call; False when it was known already."""
        call_id = str(frame.get("tool_call_id"))
        key = call_message_id(call_id)
        if key in self._messages:
            return False
        self._messages[key] = _Call(call_id, str(frame.get("tool_name")))
        return True

    def _remember_result(self, frame: Frame) -> _Result:
        call_id = str(frame.get("tool_call_id"))
        is_error = bool(frame.get("is_error"))
        content = json.dumps(
            {
                "tool_name": frame.get("tool_name"),
                "is_error": is_error,
                "duration_ms": frame.get("duration_ms"),
            }
        )
        result = _Result(call_id, content, is_error)
        self._messages[result_message_id(call_id)] = result
        return result

    def _call_started(self, frame: Frame, ts: int | None) -> list[BaseEvent]:
        if not self._remember_call(frame):
            return []
        return self._announce_call(frame, ts)

    def _announce_call(self, frame: Frame, ts: int | None) -> list[BaseEvent]:
        call_id = str(frame.get("tool_call_id"))
        self._announced_calls.add(call_id)
        return [
            ToolCallStartEvent(
                tool_call_id=call_id,
                tool_call_name=str(frame.get("tool_name")),
                parent_message_id=call_message_id(call_id),
                timestamp=ts,
            ),
            ToolCallEndEvent(tool_call_id=call_id, timestamp=ts),
        ]

    def _call_finished(self, frame: Frame, ts: int | None) -> list[BaseEvent]:
        call_id = str(frame.get("tool_call_id"))
        events: list[BaseEvent] = []
        if self._remember_call(frame):  # a call this projection never saw start
            events.extend(self._announce_call(frame, ts))
        result = self._remember_result(frame)
        events.append(
            ToolCallResultEvent(
                message_id=result_message_id(call_id),
                tool_call_id=call_id,
                content=result.content,
                role="tool",
                timestamp=ts,
            )
        )
        return events

    # ------------------------------------------------------------ steps

    def _step(self, frame: Frame, ts: int | None) -> list[BaseEvent]:
        step_id = str(frame.get("step_id"))
        raw = dict(frame)
        if frame.get("status") == "started":
            if step_id in self._open_steps:
                return []
            name = self._step_name(step_id, str(frame.get("name")))
            self._open_steps[step_id] = name
            return [StepStartedEvent(step_name=name, raw_event=raw, timestamp=ts)]
        events: list[BaseEvent] = []
        name = self._open_steps.pop(step_id, "")
        if not name:  # it started before this stream did
            name = self._step_name(step_id, str(frame.get("name")))
            events.append(StepStartedEvent(step_name=name, raw_event=raw, timestamp=ts))
        events.append(StepFinishedEvent(step_name=name, raw_event=raw, timestamp=ts))
        return events

    def _step_name(self, step_id: str, name: str) -> str:
        """The step's name, made unique among the open steps (AG-UI pairs a step's
        start and finish by name; the hub pairs them by ``step_id``)."""
        if name in self._open_steps.values():
            return f"{name} ({step_id})"
        return name
