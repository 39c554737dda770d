"""The node: the one orchestrator. Every command, from a socket, the HTTP API, a
webhook or the agent bridge, takes the same path here:

    policy -> reducer (ui_state) -> store (commit) -> broker (seq, fan-out) -> hub -> outbox

The node registers itself as the broker's handler; the broker never knows the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgspec
from sqlalchemy.exc import IntegrityError

from companion_ws.auth import policy
from companion_ws.auth.tokens import Principal, TokenService
from companion_ws.broker.base import Broker, Event, Leave, Position, Seed, new_epoch
from companion_ws.errors import (
    BadRequest,
    CompanionError,
    Forbidden,
    Internal,
    NotFound,
    SessionEnded,
    SessionMismatch,
    TooManyConnections,
    Unauthorized,
)
from companion_ws.errors import StateTooLarge as StateTooLargeError
from companion_ws.errors import VersionConflict as VersionConflictError
from companion_ws.hub.connection import Connection
from companion_ws.hub.hub import Hub
from companion_ws.hub.locks import KeyedLock
from companion_ws.hub.outbox import Outbox, Send
from companion_ws.metrics import Metrics
from companion_ws.protocol import messages as m
from companion_ws.protocol.closecodes import Close
from companion_ws.protocol.codec import decode_json, encode, frame, now_ms
from companion_ws.settings import Settings
from companion_ws.store.eventlog import EventLog
from companion_ws.store.models import JoinTokenRow, SessionRow, ToolCallRow
from companion_ws.store.store import Store
from companion_ws.store.uow import UnitOfWork
from companion_ws.tools.registry import ToolError, ToolRegistry
from ui_state import InvalidPatch, StateDoc, apply_patch, key_patch
from ui_state import StateTooLarge as StateTooLargeDoc
from ui_state import VersionConflict as VersionConflictDoc

log = logging.getLogger("companion_ws.node")

# How long stop() lets background tasks (repairs, unsubscribes) finish before cancelling.
STOP_GRACE = 5.0
REPLAY_PAGE = 256


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class ToolResult:
    tool_call_id: str
    result: str  # JSON text, as the ElevenLabs protocol wants
    is_error: bool
    replayed: bool = False


@dataclass(frozen=True, slots=True)
class Resolved:
    row: SessionRow
    created: bool
    requested: str | None = None
    reason: str | None = None


class Node:
    def __init__(
        self,
        settings: Settings,
        *,
        store: Store,
        broker: Broker,
        tokens: TokenService,
        tools: ToolRegistry,
        metrics: Metrics,
    ) -> None:
        self.settings = settings
        self.store = store
        self.broker = broker
        self.tokens = tokens
        self.tools = tools
        self.metrics = metrics
        self.hub = Hub()
        self.eventlog = EventLog(
            store,
            interval=settings.event_flush_interval,
            batch=settings.event_flush_batch,
            ttl_ms=self._ttl_ms,
        )
        self._locks = KeyedLock()
        self._seeded: set[str] = set()
        self._ended: set[str] = set()
        self._user_connections: dict[str, int] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._count_slow_close = metrics.slow_closes.inc  # one bound method for every outbox

    @property
    def _ttl_ms(self) -> int:
        return int(self.settings.session_ttl * 1000)

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        await self.broker.start(self._on_event, self._seed, self._on_leave)
        self.eventlog.start()
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="expiry-sweep")

    async def stop(self) -> None:
        # Background work is asked to finish, not cancelled: a task cancelled inside a
        # unit of work can wedge the SQLite driver (companion_ws.store.uow).
        self._stopping.set()
        if self._sweeper is not None:
            await self._sweeper
        if self._tasks:
            _, late = await asyncio.wait(list(self._tasks), timeout=STOP_GRACE)
            for task in late:
                log.warning("cancelling %s, still running at shutdown", task.get_name())
                task.cancel()
        await self.eventlog.stop()
        # Everything published is in the event log now: the history survives a restart.
        async with self.store.uow() as uow:
            await uow.sessions.mark_clean(self._seeded)
            await uow.commit()
        await self.broker.close()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _seed(self, session_id: str) -> Seed:
        """Where a session's stream starts in a fresh broker: after its last persisted
        event. The epoch survives only a clean shutdown; after a crash, events newer
        than the log may have been seen and lost, so the history gets a new epoch."""
        async with self.store.uow() as uow:
            row = await uow.sessions.get(session_id)
            last = await uow.events.max_seq(session_id)
            if row is None:
                return Seed(last, new_epoch())
            recent: list[Event] = []
            if row.epoch_clean:
                epoch = row.epoch
                rows = await uow.events.latest(session_id, self.settings.history_size)
                recent = [
                    Event(session_id, r.seq, r.epoch, r.type, r.payload.encode())
                    for r in rows
                    if r.epoch == epoch
                ]
                expected = last - len(recent) + 1
                if any(ev.seq != expected + i for i, ev in enumerate(recent)):
                    recent = []
            else:
                epoch = new_epoch()
            await uow.sessions.set_epoch(session_id, epoch, clean=False)
            await uow.commit()
        self._seeded.add(session_id)
        return Seed(last, epoch, recent)

    # ---------------------------------------------------------------- publishing

    def _on_event(self, event: Event) -> None:
        self.eventlog.append(event)
        gaps = self.hub.deliver(event)
        self.metrics.deliveries.inc(self.hub.count(event.session_id))
        for conn in gaps:
            self._spawn(self._repair(conn))
        if event.kind == "session_ended":
            self._ended.add(event.session_id)
            for conn in self.hub.connections(event.session_id):
                conn.outbox.close(Close.SESSION_ENDED, "session ended")

    def _on_leave(self, leave: Leave) -> None:
        self._spawn(self.publish(leave.session_id, "client_left", **leave.info))

    async def publish(
        self, session_id: str, kind: str, request_id: str | None = None, **fields: Any
    ) -> Event:
        body = encode(frame(kind, session_id, request_id, **fields))
        try:
            event = await self.broker.publish(session_id, kind, body)
        except CompanionError:
            raise
        except Exception as exc:
            log.warning("publish to %s failed: %s", session_id, exc)
            raise Internal("the broker is unavailable; retry") from exc
        self.eventlog.append(event)
        self.metrics.events.labels(kind).inc()
        return event

    # ---------------------------------------------------------------- sessions

    async def create_session(self, owner: str, session_id: str | None = None) -> SessionRow:
        now = now_ms()
        row = SessionRow(
            id=session_id or new_id(),
            owner_id=owner,
            created_at=now,
            last_activity_at=now,
            expires_at=now + self._ttl_ms,
            state="{}",
            state_version=0,
            last_seq=0,
            epoch=new_epoch(),
            epoch_clean=True,
        )
        async with self.store.uow() as uow:
            uow.sessions.add(row)
            await uow.commit()
        return row

    async def get_live(self, session_id: str) -> SessionRow | None:
        async with self.store.uow() as uow:
            row = await uow.sessions.get(session_id)
        if row is None or row.ended_at is not None:
            return None
        return row

    async def authorize(self, principal: Principal, session_id: str) -> SessionRow:
        """The session, if this principal may use it (HTTP routes)."""
        async with self.store.uow() as uow:
            row = await uow.sessions.get(session_id)
        if row is None:
            raise NotFound(f"no session {session_id!r}")
        policy.require_access(principal, session_id, row.owner_id)
        return row

    async def _resolve(self, principal: Principal, requested: str | None) -> Resolved:
        """PROTOCOL.md section 1's join rules."""
        if principal.is_join:
            return await self._resolve_join(principal)
        if requested is None and principal.session_scope is not None:
            requested = principal.session_scope
        policy.check_scope(principal, requested)
        if requested is None:
            return Resolved(await self.create_session(principal.sub), created=True)
        async with self.store.uow() as uow:
            row = await uow.sessions.get(requested)
        if row is not None and row.ended_at is None and row.expires_at <= now_ms():
            await self.end_session(row.id, reason="expired")
            row.ended_at = now_ms()
            row.end_reason = "expired"
        if row is not None and row.ended_at is None:
            policy.require_access(principal, row.id, row.owner_id)
            return Resolved(row, created=False)
        if principal.session_scope is not None:
            raise SessionEnded("this session has ended")
        reason = "not_found" if row is None else (row.end_reason or "expired")
        if row is not None and not policy.can_access(principal, row.id, row.owner_id):
            reason = "not_found"  # never tell a stranger that someone else's session existed
        fresh = await self.create_session(principal.sub)
        return Resolved(fresh, created=True, requested=requested, reason=reason)

    async def _resolve_join(self, principal: Principal) -> Resolved:
        """Consume a one-time join code: the winner joins its session as a companion of
        the owner; a used or expired code is refused."""
        assert principal.jti is not None
        async with self.store.uow() as uow:
            session_id = await uow.join_tokens.consume(principal.jti, now_ms())
            if session_id is None:
                raise Unauthorized("this join link was already used or has expired")
            row = await uow.sessions.get(session_id)
            if row is None or row.ended_at is not None:
                raise SessionEnded("this session has ended")
            await uow.commit()
        return Resolved(row, created=False)

    async def issue_join_token(self, principal: Principal, session_id: str) -> dict[str, Any]:
        row = await self.authorize(principal, session_id)
        if row.ended_at is not None:
            raise SessionEnded("this session has ended")
        code = self.tokens.new_join_code()
        expires_at = now_ms() + int(self.settings.join_token_ttl * 1000)
        async with self.store.uow() as uow:
            uow.join_tokens.add(
                JoinTokenRow(
                    jti=code, session_id=session_id, created_by=principal.sub, expires_at=expires_at
                )
            )
            await uow.commit()
        return {"join_token": code, "expires_at": expires_at}

    # ---------------------------------------------------------------- connections

    async def join(
        self,
        principal: Principal,
        *,
        send: Send,
        abort: Callable[[], object],
        requested: str | None,
        client: str,
        last_seq: int | None,
        epoch: str | None,
    ) -> Connection:
        if self._user_connections.get(principal.sub, 0) >= self.settings.max_connections_per_user:
            raise TooManyConnections("too many connections for this user")
        resolved = await self._resolve(principal, requested)
        row = resolved.row
        sid = row.id
        member = principal
        if principal.is_join:  # a companion joins as the owner, scoped to this session
            member = Principal(sub=row.owner_id, session_scope=sid)
        outbox = Outbox(
            send,
            limit=self.settings.outbox_limit,
            grace=self.settings.slow_close_grace,
            abort=abort,
            on_overflow=self._count_slow_close,
        )
        conn = Connection(secrets.token_urlsafe(9), sid, member, client, outbox)
        if self.hub.add(conn):
            await self.broker.subscribe(sid)
        self._user_connections[member.sub] = self._user_connections.get(member.sub, 0) + 1
        self.metrics.connections.inc()
        try:
            await self.broker.presence.add(sid, conn.id, conn.info())
            position = await self.broker.position(sid)
            members = await self.broker.presence.members(sid)
            welcome: dict[str, Any] = {
                "connection_id": conn.id,
                "user_id": conn.user_id,
                "created": resolved.created,
                "resumed": False,
                "seq": position.seq,
                "epoch": position.epoch,
                "state_version": row.state_version,
                "clients": len(members),
                "reconnect_token": self.tokens.mint_reconnect(
                    conn.user_id, sid, self.settings.reconnect_token_ttl
                )
                if self.tokens.can_mint
                else None,
            }
            if resolved.requested is not None:
                welcome["requested_session_id"] = resolved.requested
                welcome["reason"] = resolved.reason
            resumable = (
                last_seq is not None
                and not resolved.created
                and self._epoch_matches(last_seq, epoch, position.epoch)
                and (await self.broker.history(sid, last_seq, 1)).available
            )
            welcome["resumed"] = bool(resumable)  # a replay follows, not a resync
            conn.send(encode(frame("session_joined", sid, **welcome)).decode())
            await self.publish(sid, "client_joined", **conn.info())
            self.eventlog.touch(sid)
            if last_seq is None or resolved.created:
                conn.release(position.seq, position.epoch)
            else:
                await self.resume(conn, last_seq, epoch)
        except BaseException:
            await self.leave(conn)
            raise
        return conn

    @staticmethod
    def _epoch_matches(last_seq: int, epoch: str | None, current: str) -> bool:
        # Without an epoch, only "I have seen nothing" is safe to resume from.
        return epoch == current if epoch is not None else last_seq == 0

    async def leave(self, conn: Connection) -> None:
        sid = conn.session_id
        if self.hub.remove(conn):
            self._spawn(self.broker.unsubscribe(sid))
        self.metrics.connections.dec()
        left = self._user_connections.get(conn.principal.sub, 1) - 1
        if left > 0:
            self._user_connections[conn.principal.sub] = left
        else:
            self._user_connections.pop(conn.principal.sub, None)
        try:
            await self.broker.presence.remove(sid, conn.id)
            if sid not in self._ended:
                await self.publish(sid, "client_left", **conn.info())
                self.eventlog.touch(sid)
        except Exception as exc:  # the broker is down; presence expires by itself
            log.warning("announcing %s leaving %s failed: %s", conn.id, sid, exc)

    async def resume(
        self, conn: Connection, last_seq: int, epoch: str | None, request_id: str | None = None
    ) -> None:
        """Replay every event after ``last_seq``, then ``resumed``; or one
        ``resync_required`` snapshot when that history is gone or foreign."""
        sid = conn.session_id
        conn.hold()
        try:
            position = await self.broker.position(sid)
            if not self._epoch_matches(last_seq, epoch, position.epoch):
                await self._resync(conn, request_id)
                return
            cursor, replayed = last_seq, 0
            # A page must fit the send queue, or the replay itself closes the client 4409.
            size = min(REPLAY_PAGE, max(1, self.settings.outbox_limit // 2))
            while cursor < position.seq:
                page = await self.broker.history(sid, cursor, size)
                if not page.available:
                    await self._resync(conn, request_id)
                    return
                if not page.events:
                    break
                for event in page.events:
                    conn.send(event.payload.decode())
                    cursor = event.seq
                    replayed += 1
                await conn.outbox.drained()  # pace the replay to what the client reads
            if cursor < last_seq or last_seq > position.seq:
                await self._resync(conn, request_id)
                return
            conn.send(
                encode(
                    frame(
                        "resumed",
                        sid,
                        request_id,
                        from_seq=last_seq,
                        to_seq=cursor,
                        replayed=replayed,
                    )
                ).decode()
            )
            conn.release(cursor, position.epoch)
        except BaseException:
            if conn.held is not None:
                conn.release(conn.cursor, conn.epoch)
            raise

    async def _resync(self, conn: Connection, request_id: str | None) -> None:
        sid = conn.session_id
        position, doc = await self._snapshot(sid)
        conn.send(
            encode(
                frame(
                    "resync_required",
                    sid,
                    request_id,
                    state=doc.state,
                    version=doc.version,
                    seq=position.seq,
                    epoch=position.epoch,
                )
            ).decode()
        )
        conn.release(position.seq, position.epoch)

    async def _snapshot(self, session_id: str) -> tuple[Position, StateDoc]:
        """The stream position and the state, consistent with each other: taken under
        the session's lock, position first, so the state includes every change whose
        broadcast has a seq at or below the position."""
        async with self._locks(session_id):
            position = await self.broker.position(session_id)
            return position, await self.load_state(session_id)

    async def _repair(self, conn: Connection) -> None:
        """A connection saw a gap in live events (a lost broker message, or a broker
        that lost the history itself): replay the missing ones, or resync."""
        try:
            await self.resume(conn, conn.cursor, conn.epoch)
        except Exception as exc:
            log.warning("repairing %s failed: %s", conn.id, exc)

    # ---------------------------------------------------------------- state

    async def load_state(self, session_id: str) -> StateDoc:
        async with self.store.uow() as uow:
            row = await uow.sessions.get(session_id)
        if row is None:
            raise NotFound(f"no session {session_id!r}")
        return StateDoc(decode_json(row.state), row.state_version)

    async def update_state(
        self,
        session_id: str,
        patch: Any,
        *,
        expected_version: int | None = None,
        request_id: str | None = None,
        sender: str | None = None,
    ) -> StateDoc:
        """Reduce, commit, then broadcast ``session_state_updated``."""
        async with self._locks(session_id):
            for _attempt in range(5):
                doc = await self.load_state(session_id)
                new = self._reduce(doc, patch, expected_version)
                started = time.perf_counter()
                async with self.store.uow() as uow:
                    saved = await self._save_state(uow, session_id, doc, new)
                    await uow.commit()
                self.metrics.state_commit_seconds.observe(time.perf_counter() - started)
                if saved:
                    break
                # another process committed first: re-read and re-apply
            else:
                raise Internal("the state is changing too fast; retry")
            await self.publish(
                session_id,
                "session_state_updated",
                request_id,
                patch=patch,
                version=new.version,
                sender=sender,
            )
        return new

    async def _save_state(
        self, uow: UnitOfWork, session_id: str, old: StateDoc, new: StateDoc
    ) -> bool:
        """Compare-and-set ``old`` -> ``new`` in ``uow`` (not committed): False when
        another writer changed the state first."""
        return await uow.sessions.save_state(
            session_id,
            from_version=old.version,
            state=encode(new.state).decode(),
            version=new.version,
            now=now_ms(),
            ttl_ms=self._ttl_ms,
        )

    def _reduce(self, doc: StateDoc, patch: Any, expected_version: int | None) -> StateDoc:
        try:
            return apply_patch(
                doc,
                patch,
                expected_version=expected_version,
                max_bytes=self.settings.max_state_bytes,
            )
        except VersionConflictDoc as exc:
            raise VersionConflictError(str(exc), version=exc.current_version) from None
        except StateTooLargeDoc as exc:
            raise StateTooLargeError(str(exc), size=exc.size, limit=exc.limit) from None
        except InvalidPatch as exc:
            raise BadRequest(str(exc)) from None

    # ---------------------------------------------------------------- ending

    async def end_session(
        self, session_id: str, *, reason: str = "ended", request_id: str | None = None
    ) -> bool:
        async with self.store.uow() as uow:
            ended = await uow.sessions.end(session_id, reason=reason, now=now_ms())
            await uow.commit()
        if ended:
            await self.publish(session_id, "session_ended", request_id, reason=reason)
        return ended

    async def _sweep_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.settings.sweep_interval)
            if self._stopping.is_set():
                return
            try:
                await self.sweep()
            except Exception:
                log.exception("the expiry sweep failed")

    async def sweep(self) -> list[str]:
        """End every session inactive for longer than the TTL."""
        await self.eventlog.flush()
        async with self.store.uow() as uow:
            expired = await uow.sessions.expired(now_ms())
        ended = []
        for sid in expired:
            if await self.end_session(sid, reason="expired"):
                ended.append(sid)
        return ended

    # ---------------------------------------------------------------- tools

    async def call_tool(
        self,
        session_id: str,
        tool_name: str,
        tool_call_id: str,
        parameters: dict[str, Any],
        *,
        sender: str | None = None,
        request_id: str | None = None,
    ) -> ToolResult:
        """Run a tool once per ``tool_call_id``: its state patch and ledger row commit in
        one transaction, then its update is broadcast. A repeat answers the stored result."""
        named = parameters.get("session_id")
        if named is not None and named != session_id:
            raise SessionMismatch(f"this call names session {named!r}, not {session_id!r}")
        async with self._locks(session_id):
            stored = await self._stored_result(tool_call_id, session_id)
            if stored is not None:
                return stored
            tool = self.tools.get(tool_name)
            if tool is None:
                self.metrics.tool_calls.labels(tool_name[:64], "not_found").inc()
                return ToolResult(
                    tool_call_id, _json({"error": f"no tool named {tool_name!r}"}), True
                )
            doc = await self.load_state(session_id)
            new_doc: StateDoc | None = None
            try:
                outcome = await tool.run(doc.state, parameters)
                if outcome.patch:
                    new_doc = self._reduce(doc, outcome.patch, None)
                result, is_error = _json(outcome.result), False
            except ToolError as exc:
                outcome, result, is_error = None, _json({"error": str(exc)}), True
            except CompanionError as exc:
                outcome, result, is_error = None, _json({"error": exc.message}), True
            except Exception as exc:
                log.exception("tool %s failed", tool_name)
                outcome, result, is_error = (
                    None,
                    _json({"error": f"{tool_name} failed: {exc}"}),
                    True,
                )
            try:
                async with self.store.uow() as uow:
                    if new_doc is not None and not await self._save_state(
                        uow, session_id, doc, new_doc
                    ):
                        raise Internal("the state changed during the tool call; retry")
                    uow.tool_calls.add(
                        ToolCallRow(
                            tool_call_id=tool_call_id,
                            session_id=session_id,
                            tool_name=tool_name,
                            result=result,
                            is_error=is_error,
                            created_at=now_ms(),
                        )
                    )
                    await uow.commit()
            except (IntegrityError, Internal):
                # The same id committed elsewhere (another process) first: its result stands.
                # (Its state change can also make ours fail the version check first.)
                stored = await self._stored_result(tool_call_id, session_id)
                if stored is None:
                    raise
                return stored
            self.metrics.tool_calls.labels(tool_name, "error" if is_error else "ok").inc()
            if new_doc is not None and outcome is not None:
                await self.publish(
                    session_id,
                    "session_state_updated",
                    request_id,
                    patch=outcome.patch,
                    version=new_doc.version,
                    sender=sender,
                )
            if outcome is not None and outcome.update_text:
                await self.publish(
                    session_id,
                    "contextual_update",
                    request_id,
                    text=outcome.update_text,
                    data=outcome.update_data,
                    sender=sender,
                )
        return ToolResult(tool_call_id, result, is_error)

    async def _stored_result(self, tool_call_id: str, session_id: str) -> ToolResult | None:
        async with self.store.uow() as uow:
            row = await uow.tool_calls.get(tool_call_id)
        if row is None:
            return None
        if row.session_id != session_id:
            raise SessionMismatch("this tool_call_id belongs to another session")
        return ToolResult(tool_call_id, row.result, row.is_error, replayed=True)

    # ---------------------------------------------------------------- history & presence

    async def history(self, session_id: str, after_seq: int, limit: int) -> dict[str, Any]:
        """Events after ``after_seq``: from the broker's window when it covers them (it
        has every event of the current history, whoever published it), else from the
        database's long history, topped up from the window."""
        page = await self.broker.history(session_id, after_seq, limit)
        if page.available:
            events = [decode_json(e.payload) for e in page.events]
            last = page.events[-1].seq if page.events else after_seq
        else:
            await self.eventlog.flush()
            async with self.store.uow() as uow:
                rows = await uow.events.after(session_id, after_seq, limit)
            events = [decode_json(r.payload) for r in rows]
            last = rows[-1].seq if rows else after_seq
            if len(events) < limit:
                top_up = await self.broker.history(session_id, last, limit - len(events))
                if top_up.available:
                    events.extend(decode_json(e.payload) for e in top_up.events)
                    last = top_up.events[-1].seq if top_up.events else last
        position = await self.broker.position(session_id)
        return {
            "events": events,
            "after_seq": after_seq,
            "next_after_seq": last,
            "latest_seq": position.seq,
            "epoch": position.epoch,
            "has_more": last < position.seq,
        }

    # ---------------------------------------------------------------- socket commands

    async def handle(self, conn: Connection, msg: m.ClientMessage) -> None:
        sid = conn.session_id
        rid = msg.requestId
        self.eventlog.touch(sid)
        match msg:
            case m.Ping():
                conn.send(encode(frame("pong", sid, rid)).decode())
            case m.GetSessionState():
                position, doc = await self._snapshot(sid)
                self._reply(
                    conn,
                    "session_state",
                    rid,
                    state=doc.state,
                    version=doc.version,
                    seq=position.seq,
                )
            case m.UpdateSessionState():
                await self.update_state(
                    sid,
                    _patch_of(msg),
                    expected_version=msg.expected_version,
                    request_id=rid,
                    sender=conn.id,
                )
            case m.ContextualUpdate(text=text, data=data):
                await self.publish(
                    sid, "contextual_update", rid, text=text, data=data, sender=conn.id
                )
            case m.ClientToolCall(client_tool_call=call, metadata=metadata):
                named = (metadata or {}).get("session_id")
                if named is not None and named != sid:
                    raise SessionMismatch(f"this call names session {named!r}, not {sid!r}")
                outcome = await self.call_tool(
                    sid,
                    call.tool_name,
                    call.tool_call_id,
                    call.parameters,
                    sender=conn.id,
                    request_id=rid,
                )
                self._reply(
                    conn,
                    "client_tool_result",
                    rid,
                    tool_call_id=outcome.tool_call_id,
                    result=outcome.result,
                    is_error=outcome.is_error,
                )
            case m.Resume(last_seq=last_seq, epoch=epoch):
                await self.resume(conn, last_seq, epoch, rid)
            case m.GetHistory(after_seq=after_seq, limit=limit):
                self._reply(conn, "history", rid, **await self.history(sid, after_seq, limit))
            case m.GetPresence():
                self._reply(conn, "presence", rid, clients=await self.broker.presence.members(sid))
            case m.EndSession():
                row = await self.get_live(sid)
                if row is None:
                    raise SessionEnded("this session has ended")
                if row.owner_id != conn.user_id and not conn.principal.is_admin:
                    raise Forbidden("only the session's owner can end it")
                await self.end_session(sid, reason="ended", request_id=rid)

    def _reply(self, conn: Connection, kind: str, request_id: str | None, **fields: Any) -> None:
        conn.send(encode(frame(kind, conn.session_id, request_id, **fields)).decode())

    def error_frame(self, session_id: str, error: CompanionError, request_id: str | None) -> str:
        self.metrics.errors.labels(error.code).inc()
        return encode(frame("error", session_id, request_id, **error.payload())).decode()


def _patch_of(msg: m.UpdateSessionState) -> dict[str, Any]:
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


def _json(value: Any) -> str:
    return value if isinstance(value, str) else encode(value).decode()
