"""The session directory: creating, finding, authorizing, ending and expiring sessions.
Where a connect lands is ``joins`` (the rules themselves: ``join_rules``); a session's
devices and join codes are ``devices``."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from typing import Any

from companion_ws.auth import policy
from companion_ws.auth.policy import Action
from companion_ws.auth.tokens import Principal
from companion_ws.broker.base import Presence
from companion_ws.hub.credentials import Credentials
from companion_ws.hub.locks import KeyedLock
from companion_ws.hub.publisher import Publisher
from companion_ws.hub.quota import counted
from companion_ws.hub.ratelimit import KeyedLimiter
from companion_ws.hub.state import CAS_ATTEMPTS, StateService, changed
from companion_ws.protocol import frames as f
from companion_ws.protocol.codec import decode_json, now_ms
from companion_ws.protocol.errors import (
    Internal,
    NotFound,
    SessionLive,
    TooManySessions,
)
from companion_ws.store.eventlog import EventLog
from companion_ws.store.store import Store
from companion_ws.store.uow import UnitOfWork
from companion_ws.values import Session, new_epoch
from ui_state import StateDoc, abandon_tasks
from ui_state.restore import restored_state

log = logging.getLogger("companion_ws.retention")

__all__ = ["PURGE_BATCH", "PURGE_ROUNDS", "SessionDirectory", "new_id"]

# Retention deletes in batches of this many sessions (and join tokens), each batch its
# own transaction, at most this many batches a sweep: bounded work per sweep.
PURGE_BATCH = 500
PURGE_ROUNDS = 10


def new_id() -> str:
    return uuid.uuid4().hex


class SessionDirectory:
    def __init__(
        self,
        store: Store,
        publisher: Publisher,
        state: StateService,
        locks: KeyedLock,
        presence: Presence,
        eventlog: EventLog,
        credentials: Credentials,
        *,
        ttl_ms: int,
        retention_ms: int | None = None,
        create_rate: float = 5.0,
        create_burst: int = 20,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._state = state
        self._locks = locks
        self._presence = presence
        self._eventlog = eventlog
        self._ttl_ms = ttl_ms
        self._retention_ms = retention_ms
        self._credentials = credentials
        # New sessions per user (docs/protocol.md section 4, v1.2): a token bucket per sub.
        self._creates = KeyedLimiter(create_rate, create_burst)

    def charge(self, principal: Principal) -> None:
        """One new session on ``principal``'s account, or :class:`TooManySessions`
        (admins and services are capped per address only)."""
        if counted(principal) and not self._creates.take(principal.sub):
            raise TooManySessions("too many new sessions: slow down")

    async def create_for(self, principal: Principal) -> Session:
        """A new session a caller asked for (``POST /sessions``), within its rate."""
        self.charge(principal)
        return await self.create(principal.sub)

    async def create(
        self,
        owner: str,
        session_id: str | None = None,
        *,
        state: dict[str, Any] | None = None,
        restored_from: str | None = None,
    ) -> Session:
        """A new live session owned by ``owner``, empty or starting from ``state``."""
        now = now_ms()
        row = Session(
            id=session_id or new_id(),
            owner_id=owner,
            created_at=now,
            last_activity_at=now,
            expires_at=now + self._ttl_ms,
            ended_at=None,
            end_reason=None,
            state=json.dumps(state, separators=(",", ":")) if state else "{}",
            state_version=1 if state else 0,
            last_seq=0,
            epoch=new_epoch(),
            epoch_clean=True,
            restored_from=restored_from,
        )
        await self._store.connects.create(row)
        return row

    async def restore(self, principal: Principal, source_id: str) -> Session:
        """A new session carrying on the caller's own ended or expired session
        ``source_id``: its last state, its unfinished task active again (section 13)."""
        row = await self.get(source_id)
        if row is None or row.owner_id != principal.sub:
            raise NotFound(f"you have no session {source_id!r}")  # never tell whose it is
        self.charge(principal)
        if row.ended_at is None:
            if row.expires_at > now_ms():
                raise SessionLive("this session is still live: connect to it instead")
            await self.end(row.id, reason="expired")
            row = await self.get(source_id) or row
        return await self.carry_on(row)

    async def carry_on(self, row: Session) -> Session:
        """A new session carrying on the ended ``row``: its state, its unfinished task
        active again (section 13)."""
        state = restored_state(json.loads(row.state or "{}"), source=row.id)
        fresh = await self.create(row.owner_id, state=state, restored_from=row.id)
        log.info("session %s restored from %s", fresh.id, row.id)
        return fresh

    async def get(self, session_id: str) -> Session | None:
        """The session, live or ended, if it exists."""
        async with self._store.uow() as uow:
            return await uow.sessions.get(session_id)

    async def get_live(self, session_id: str) -> Session | None:
        """The session, if it exists and has not ended."""
        row = await self.get(session_id)
        if row is None or row.ended_at is not None:
            return None
        return row

    async def authorize(
        self, principal: Principal, session_id: str, action: Action = Action.READ
    ) -> Session:
        """The session, if this HTTP caller's role on it allows ``action``."""
        row = await self.get(session_id)
        if row is None:
            raise NotFound(f"no session {session_id!r}")
        policy.require_http(
            principal, session_id, row.owner_id, action, ended=row.ended_at is not None
        )
        await self._credentials.check(principal)
        return row

    async def end(
        self, session_id: str, *, reason: str = "ended", request_id: str | None = None
    ) -> bool:
        """End the session: its active tasks abandoned (docs/protocol.md section 13) in the
        same commit as the end, then that state change and ``session_ended`` to all.
        False when it had ended already."""
        async with self._locks(session_id):  # no tool run's change lands in between
            for _attempt in range(CAS_ATTEMPTS):
                async with self._store.uow() as uow:
                    row = await uow.sessions.get(session_id)
                    if row is None or row.ended_at is not None:
                        return False
                    now = now_ms()
                    frames = await self._abandon(uow, row, now)
                    if frames is None:
                        continue  # another process changed the state first: again
                    if not await uow.sessions.end(session_id, reason=reason, now=now):
                        return False  # another process ended it in between
                    await uow.commit()
                    break
            else:
                raise Internal("the session's state is changing too fast to end it; retry")
            ended = f.SessionEnded(
                session_id=session_id, requestId=f.opt(request_id), reason=reason
            )
            await self._publisher.publish_all([*frames, ended], bounded=False)
        return True

    async def _abandon(
        self, uow: UnitOfWork, row: Session, now: int
    ) -> list[f.BroadcastFrame] | None:
        """In ``uow`` (not committed): the session's active tasks abandoned. Answers the
        state change to broadcast (none when no task was active), or None when another
        writer changed the state first."""
        doc = StateDoc(decode_json(row.state), row.state_version)
        patch = abandon_tasks(doc.state, now=now)
        if patch is None:
            return []
        new = self._state.reduce(doc, patch, None, bounded=False)
        if not await self._state.save(uow, row.id, doc, new):
            return None
        return [changed(row.id, patch, new.version, None, None)]

    async def sweep(self) -> list[str]:
        """End every session inactive for longer than the TTL, then delete what is
        past retention (:meth:`purge`)."""
        await self._eventlog.flush()
        async with self._store.uow() as uow:
            expired = await uow.sessions.expired(now_ms())
        ended = [sid for sid in expired if await self.end(sid, reason="expired")]
        if self._retention_ms:  # 0 (or None): keep everything
            # What the endings just published is written before its session can go.
            await self._eventlog.flush()
            await self.purge(now_ms() - self._retention_ms)
        return ended

    async def purge(self, cutoff: int) -> tuple[int, int]:
        """Delete the sessions that ended before ``cutoff`` with their events, tool-call
        ledger rows and join tokens, and the join tokens that expired before it, in
        batches of :data:`PURGE_BATCH`; at most :data:`PURGE_ROUNDS` batches of each
        (the next sweep goes on). Answers (sessions, join tokens) deleted."""
        sessions = tokens = 0
        for _ in range(PURGE_ROUNDS):
            async with self._store.uow() as uow:
                ids = await uow.sessions.ended_before(cutoff, PURGE_BATCH)
                sessions += await uow.sessions.purge(ids)
                await uow.commit()
            if len(ids) < PURGE_BATCH:
                break
        for _ in range(PURGE_ROUNDS):
            async with self._store.uow() as uow:
                deleted = await uow.join_tokens.purge_expired(cutoff, PURGE_BATCH)
                await uow.commit()
            tokens += deleted
            if deleted < PURGE_BATCH:
                break
        if sessions or tokens:
            log.info("retention: deleted %d ended sessions and %d join tokens", sessions, tokens)
        return sessions, tokens

    async def page(
        self, *, limit: int, after_id: str | None, owner_id: str | None, active: bool | None
    ) -> tuple[Sequence[Session], str | None]:
        """One page of sessions, and the cursor of the next (None on the last page)."""
        await self._eventlog.flush()
        async with self._store.uow() as uow:
            rows = await uow.sessions.page(
                limit=limit + 1, after_id=after_id, owner_id=owner_id, active=active
            )
        page = rows[:limit]
        return page, (page[-1].id if len(rows) > limit else None)

    async def describe(self, row: Session, *, clients: bool = False) -> dict[str, Any]:
        """What the HTTP API says of a session; ``clients`` adds its live connections."""
        live = row.ended_at is None
        members = await self._presence.members(row.id) if live else []
        info: dict[str, Any] = {
            "session_id": row.id,
            "owner_id": row.owner_id,
            "created_at": row.created_at,
            "last_activity_at": row.last_activity_at,
            "expires_at": row.expires_at,
            "ended_at": row.ended_at,
            "end_reason": row.end_reason,
            "active": live,
            "connections": len(members),
            "seq": row.last_seq,
            "state_version": row.state_version,
            "restored_from": row.restored_from,
        }
        if clients:
            info["clients"] = members
        return info

    async def fresh(self, principal: Principal, session_id: str) -> Session:
        """:meth:`authorize` to read, then the row after the event log's pending writes
        (``seq`` current)."""
        row = await self.authorize(principal, session_id)
        await self._eventlog.flush()
        return await self.get(session_id) or row
