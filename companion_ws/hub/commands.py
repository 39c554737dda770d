"""The command router: one decoded client frame of a joined socket, matched on its type
and handed to the service that does it; replies go to that socket only."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

import msgspec

from companion_ws import telemetry
from companion_ws.auth import policy
from companion_ws.auth.policy import Action
from companion_ws.auth.tokens import RECONNECT, Principal, TokenService
from companion_ws.broker.base import Presence
from companion_ws.hub.connection import Connection
from companion_ws.hub.directory import SessionDirectory
from companion_ws.hub.publisher import Publisher
from companion_ws.hub.recovery import Recovery
from companion_ws.hub.state import StateService
from companion_ws.hub.toolrunner import ToolRunner
from companion_ws.hub.voice import VoiceFloor
from companion_ws.metrics import Metrics
from companion_ws.protocol import frames as f
from companion_ws.protocol import messages as m
from companion_ws.protocol.codec import encode
from companion_ws.protocol.errors import (
    BadRequest,
    CompanionError,
    NotAllowed,
    SessionEnded,
    SessionMismatch,
    Unauthorized,
)
from companion_ws.protocol.replies import error_frame
from companion_ws.store.eventlog import EventLog
from ui_state import InvalidPatch, key_patch

if TYPE_CHECKING:
    from companion_ws.hub.lifetimes import Lifetimes

__all__ = ["ACTIONS", "CommandRouter"]

#: What each client frame does, for the role table (docs/protocol.md section 11).
ACTIONS: dict[type[m.ClientMessage], Action] = {
    m.Ping: Action.READ,
    m.GetSessionState: Action.READ,
    m.Resume: Action.READ,
    m.GetHistory: Action.READ,
    m.GetPresence: Action.READ,
    m.UpdateSessionState: Action.WRITE,
    m.ContextualUpdate: Action.WRITE,
    m.ClientToolCall: Action.WRITE,
    m.EndSession: Action.END,
    m.Refresh: Action.READ,
    m.Transcript: Action.CONVERSE,
    m.AgentState: Action.CONVERSE,
    m.Step: Action.CONVERSE,
    m.TakeVoice: Action.VOICE,
    m.ReleaseVoice: Action.VOICE,
    m.AgentControl: Action.STEER,
}


class CommandRouter:
    def __init__(
        self,
        directory: SessionDirectory,
        state: StateService,
        recovery: Recovery,
        tools: ToolRunner,
        publisher: Publisher,
        presence: Presence,
        eventlog: EventLog,
        metrics: Metrics,
        tokens: TokenService,
        lifetimes: Lifetimes,
        voice: VoiceFloor,
    ) -> None:
        self._directory = directory
        self._state = state
        self._recovery = recovery
        self._tools = tools
        self._publisher = publisher
        self._presence = presence
        self._eventlog = eventlog
        self._metrics = metrics
        self._tokens = tokens
        self._lifetimes = lifetimes
        self._voice = voice

    def error(self, session_id: str, error: CompanionError, request_id: str | None) -> str:
        """:func:`error_frame`, counted."""
        self._metrics.errors.labels(error.code).inc()
        return error_frame(session_id, error, request_id)

    @telemetry.on_frame
    async def handle(self, conn: Connection, msg: m.ClientMessage) -> None:
        """Do what ``msg`` asks; raise the error that answers it."""
        sid = conn.session_id
        rid = msg.requestId
        action = ACTIONS[type(msg)]
        holds = (
            not policy.allows(conn.role, action)
            and policy.holder_may(conn.role, action)
            and await self._voice.holds(conn)
        )
        policy.require(conn.role, action, holds_floor=holds)
        self._eventlog.touch(sid)
        match msg:
            case m.Ping():
                _reply(conn, rid, f.Pong)
            case m.GetSessionState():
                position, doc = await self._recovery.snapshot(sid)
                _reply(
                    conn,
                    rid,
                    f.SessionState,
                    state=doc.state,
                    version=doc.version,
                    seq=position.seq,
                )
            case m.UpdateSessionState():
                await self._state.update(
                    sid,
                    patch_of(msg),
                    expected_version=msg.expected_version,
                    request_id=rid,
                    sender=conn.id,
                )
            case m.ContextualUpdate(text=text, data=data):
                await self._publisher.publish(
                    f.ContextualUpdate(
                        session_id=sid, requestId=f.opt(rid), text=text, data=data, sender=conn.id
                    )
                )
            case m.Transcript() | m.AgentState() | m.Step():
                await self._publisher.publish(conversation_frame(sid, msg, conn.id, rid))
            case m.ClientToolCall(client_tool_call=call, metadata=metadata):
                for named in (
                    (metadata or {}).get("session_id"),
                    call.parameters.get("session_id"),
                ):
                    self._check_named(named, sid)
                outcome = await self._tools.call(
                    sid,
                    call.tool_name,
                    call.tool_call_id,
                    call.parameters,
                    sender=conn.id,
                    request_id=rid,
                )
                _reply(
                    conn,
                    rid,
                    f.ClientToolResult,
                    tool_call_id=outcome.tool_call_id,
                    result=outcome.result,
                    is_error=outcome.is_error,
                )
            case m.Resume(last_seq=last_seq, epoch=epoch):
                await self._recovery.resume(conn, last_seq, epoch, rid)
            case m.GetHistory(after_seq=after_seq, limit=limit):
                page = await self._recovery.history(sid, after_seq, limit)
                conn.send(encode(msgspec.structs.replace(page, requestId=f.opt(rid))).decode())
            case m.GetPresence():
                clients = await self._presence.members(sid)
                _reply(conn, rid, f.Presence, clients=clients)
            case m.EndSession():
                if await self._directory.get_live(sid) is None:
                    raise SessionEnded("this session has ended")
                await self._directory.end(sid, reason="ended", request_id=rid)
            case m.TakeVoice():
                await self._voice.take(conn, rid)
            case m.ReleaseVoice():
                await self._voice.release(conn, rid)
            case m.AgentControl(action=steer):
                await self._voice.control(conn, steer, rid)
            case m.Refresh(token=token):
                await self._tokens.ensure_key(token)  # a rotated kid: the JWKS, off the loop
                conn.principal = self._renewed(conn, token)
                self._lifetimes.watch(conn)
                _reply(conn, rid, f.Refreshed, expires_at=int(conn.principal.expires_at * 1000))

    def _check_named(self, named: Any, session_id: str) -> None:
        """A call may name its session by the bare id or by the agent capability (the
        ElevenLabs ``session_id`` dynamic variable); any other session is refused."""
        if named is None or named == session_id:
            return
        if isinstance(named, str) and named.count(".") == 2:
            try:
                scope = self._tokens.verify_capability(named).session_scope
            except Unauthorized:
                scope = None
            if scope == session_id:
                return
        raise SessionMismatch("this call names another session than the connection's")

    def _renewed(self, conn: Connection, token: str) -> Principal:
        """The principal of a refresh token, if it is a fresh credential of the
        connection's own: the same user's token (or the same device's, for a device),
        good for this session. Never a user's reconnect token (it renews nothing: it
        expires with the credential it came from) nor the agent capability (not a
        user's token at all).

        A refresh renews the connection, not the reconnect token the client holds: that
        keeps its expiry, and once it has passed the client connects with a fresh
        credential of its own (its ``getToken``), which yields a later one."""
        try:
            fresh = self._tokens.verify_user(token)
        except Unauthorized as exc:
            raise NotAllowed(f"refresh refused: {exc.message}") from None
        if fresh.token_type == RECONNECT:
            raise NotAllowed("refresh refused: a reconnect token cannot renew a connection")
        old = conn.principal
        same = (
            not fresh.is_join
            and fresh.sub == old.sub
            and fresh.device_id == old.device_id
            and fresh.session_scope in (None, conn.session_id)
            and (old.device_id is not None or not fresh.is_device)
        )
        if not same:
            raise NotAllowed("refresh refused: the token is for another user, device or session")
        if old.is_device:
            fresh = replace(fresh, device_role=old.device_role)
        return fresh


#: The broadcast each of the agent's frames of section 13 becomes.
_CONVERSATION: dict[type[m.ClientMessage], type[f.BroadcastFrame]] = {
    m.Transcript: f.Transcript,
    m.AgentState: f.AgentState,
    m.Step: f.Step,
}


def conversation_frame(
    session_id: str,
    msg: m.Transcript | m.AgentState | m.Step,
    sender: str,
    request_id: str | None,
) -> f.BroadcastFrame:
    """The broadcast of an agent's frame of section 13: its fields, plus who sent it."""
    fields = {k: v for k, v in msgspec.structs.asdict(msg).items() if v is not None}
    fields.update(session_id=session_id, sender=sender)
    if request_id is not None:
        fields["requestId"] = request_id
    return msgspec.convert(fields, _CONVERSATION[type(msg)])


def patch_of(msg: m.UpdateSessionState) -> dict[str, Any]:
    """The merge patch an ``update_session_state`` asks for."""
    if msg.patch is not None:
        if msg.key is not None:
            raise BadRequest("send either `key` and `value`, or `patch`, not both")
        return msg.patch
    if msg.key is None or msg.value is msgspec.UNSET:
        raise BadRequest("update_session_state needs `key` and `value`, or `patch`")
    try:
        return key_patch(msg.key, msg.value)
    except InvalidPatch as exc:
        raise BadRequest(str(exc)) from None


def _reply(conn: Connection, request_id: str | None, kind: Any, **fields: Any) -> None:
    """A direct frame of ``kind`` to ``conn``, answering ``request_id``."""
    frame = kind(session_id=conn.session_id, requestId=f.opt(request_id), **fields)
    conn.send(encode(frame).decode())
