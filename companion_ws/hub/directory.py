"""The session directory: creating, finding, authorizing, ending and expiring sessions,
the join rules of PROTOCOL.md section 1, and one-time join codes."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from companion_ws.auth import policy
from companion_ws.auth.policy import Action, Role
from companion_ws.auth.tokens import DEVICE, Principal, TokenService
from companion_ws.broker.base import Presence, new_epoch
from companion_ws.errors import (
    BadRequest,
    Forbidden,
    Internal,
    NotFound,
    SessionEnded,
    SessionLive,
    Unauthorized,
)
from companion_ws.hub.locks import KeyedLock
from companion_ws.hub.publisher import Publisher
from companion_ws.hub.state import CAS_ATTEMPTS, StateService, changed
from companion_ws.protocol import frames as f
from companion_ws.protocol.codec import decode_json, now_ms
from companion_ws.store.connects import SessionHead
from companion_ws.store.eventlog import EventLog
from companion_ws.store.models import DeviceRow, JoinTokenRow, SessionRow
from companion_ws.store.store import Store
from companion_ws.store.uow import UnitOfWork
from ui_state import StateDoc, abandon_tasks
from ui_state.restore import restored_state, unfinished_task

log = logging.getLogger("companion_ws.retention")

__all__ = ["PURGE_BATCH", "PURGE_ROUNDS", "Resolved", "SessionDirectory", "new_id"]

# Retention deletes in batches of this many sessions (and join tokens), each batch its
# own transaction, at most this many batches a sweep: bounded work per sweep.
PURGE_BATCH = 500
PURGE_ROUNDS = 10


def new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True)
class Resolved:
    """The session a connect lands in, why (PROTOCOL.md section 1), and as whom: the
    connection's principal (a joined device's, after a join code), role and device."""

    row: SessionHead
    created: bool
    principal: Principal
    role: Role
    requested: str | None = None
    reason: str | None = None


class SessionDirectory:
    def __init__(
        self,
        store: Store,
        publisher: Publisher,
        state: StateService,
        locks: KeyedLock,
        presence: Presence,
        eventlog: EventLog,
        tokens: TokenService,
        *,
        ttl_ms: int,
        join_token_ttl: float,
        device_ttl: float,
        retention_ms: int | None = None,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._state = state
        self._locks = locks
        self._presence = presence
        self._eventlog = eventlog
        self._tokens = tokens
        self._ttl_ms = ttl_ms
        self._join_ttl_ms = int(join_token_ttl * 1000)
        self._device_ttl_ms = int(device_ttl * 1000)
        self._retention_ms = retention_ms

    async def create(
        self,
        owner: str,
        session_id: str | None = None,
        *,
        state: dict[str, Any] | None = None,
        restored_from: str | None = None,
    ) -> SessionRow:
        """A new live session owned by ``owner``, empty or starting from ``state``."""
        now = now_ms()
        row = SessionRow(
            id=session_id or new_id(),
            owner_id=owner,
            created_at=now,
            last_activity_at=now,
            expires_at=now + self._ttl_ms,
            state=json.dumps(state, separators=(",", ":")) if state else "{}",
            state_version=1 if state else 0,
            last_seq=0,
            epoch=new_epoch(),
            epoch_clean=True,
            restored_from=restored_from,
        )
        await self._store.connects.create(row)
        return row

    async def restore(self, principal: Principal, source_id: str) -> SessionRow:
        """A new session carrying on the caller's own ended or expired session
        ``source_id``: its last state, its unfinished task active again (section 13)."""
        row = await self.get(source_id)
        if row is None or row.owner_id != principal.sub:
            raise NotFound(f"you have no session {source_id!r}")  # never tell whose it is
        if row.ended_at is None:
            if row.expires_at > now_ms():
                raise SessionLive("this session is still live: connect to it instead")
            await self.end(row.id, reason="expired")
            row = await self.get(source_id) or row
        return await self._carry_on(row)

    async def _carry_on(self, row: SessionRow) -> SessionRow:
        state = restored_state(json.loads(row.state or "{}"), source=row.id)
        fresh = await self.create(row.owner_id, state=state, restored_from=row.id)
        log.info("session %s restored from %s", fresh.id, row.id)
        return fresh

    async def get(self, session_id: str) -> SessionRow | None:
        """The session, live or ended, if it exists."""
        async with self._store.uow() as uow:
            return await uow.sessions.get(session_id)

    async def get_live(self, session_id: str) -> SessionRow | None:
        """The session, if it exists and has not ended."""
        row = await self.get(session_id)
        if row is None or row.ended_at is not None:
            return None
        return row

    async def authorize(
        self, principal: Principal, session_id: str, action: Action = Action.READ
    ) -> SessionRow:
        """The session, if this HTTP caller's role on it allows ``action``."""
        row = await self.get(session_id)
        if row is None:
            raise NotFound(f"no session {session_id!r}")
        policy.require_http(principal, session_id, row.owner_id, action)
        if principal.is_device:
            await self._check_device(principal)
        return row

    async def resolve(self, principal: Principal, requested: str | None, client: str) -> Resolved:
        """PROTOCOL.md section 1's join rules, and section 11's roles."""
        if principal.is_join:
            return await self._resolve_join(principal, requested, client)
        if requested is None and principal.session_scope is not None:
            requested = principal.session_scope
        policy.check_scope(principal, requested)
        if principal.is_device:
            await self._check_device(principal)
        if requested is None:
            new = await self.create(principal.sub)
            role = policy.socket_role(principal, new.id, new.owner_id, client)
            return Resolved(SessionHead.of(new), created=True, principal=principal, role=role)
        # Read on every connect, never cached: another process may have ended it.
        row = await self._store.session_head(requested)
        if row is not None and row.ended_at is None and row.expires_at <= now_ms():
            await self.end(row.id, reason="expired")
            row = await self._store.session_head(requested)
        if row is not None and row.ended_at is None:
            role = policy.socket_role(principal, row.id, row.owner_id, client)
            return Resolved(row, created=False, principal=principal, role=role)
        if principal.session_scope is not None:
            raise SessionEnded("this session has ended")
        reason = "not_found" if row is None else (row.end_reason or "expired")
        ended: SessionRow | None = None
        if row is not None and not policy.may_open(principal, row.owner_id):
            reason = "not_found"  # never tell a stranger that someone else's session existed
        elif row is not None:
            ended = await self._restores_itself(principal, row)
        # One's own expired session with an unfinished task is carried on; else a new one.
        fresh = await self._carry_on(ended) if ended else await self.create(principal.sub)
        role = policy.socket_role(principal, fresh.id, fresh.owner_id, client)
        return Resolved(
            SessionHead.of(fresh),
            created=True,
            principal=principal,
            role=role,
            requested=requested,
            reason=reason,
        )

    async def _restores_itself(self, principal: Principal, head: SessionHead) -> SessionRow | None:
        """Connecting to one's own expired session that had an unfinished task carries
        it on in a new session (section 13): that session, with its state."""
        if head.owner_id != principal.sub or head.end_reason != "expired":
            return None
        row = await self.get(head.id)
        if row is None or unfinished_task(json.loads(row.state or "{}")) is None:
            return None
        return row

    async def _resolve_join(
        self, principal: Principal, requested: str | None, client: str
    ) -> Resolved:
        """Consume a one-time join code: the winner joins its session as a new device
        with the code's role; a used or expired code is refused, and so is a code
        combined with another session's id (the code stays unused: nothing is
        committed)."""
        assert principal.jti is not None
        if client == policy.AGENT_CLIENT:
            raise Forbidden("a joined device cannot connect as the agent")
        now = now_ms()
        # Whole seconds, as in the device's token: the two expire together.
        expires_at = (now + self._device_ttl_ms) // 1000 * 1000
        async with self._store.uow() as uow:
            code = await uow.join_tokens.consume(principal.jti, now)
            if code is None:
                raise Unauthorized("this join link was already used or has expired")
            if requested is not None and requested != code.session_id:
                raise Forbidden("this join link is for another session")
            row = await uow.sessions.get(code.session_id)
            if row is None or row.ended_at is not None:
                raise SessionEnded("this session has ended")
            device = DeviceRow(
                device_id=new_id()[:16],
                session_id=row.id,
                role=code.role,
                joined_at=now,
                expires_at=expires_at,
            )
            uow.devices.add(device)
            await uow.commit()
        member = Principal(
            sub=row.owner_id,
            session_scope=row.id,
            token_type=DEVICE,
            expires_at=device.expires_at / 1000,
            device_id=device.device_id,
            device_role=device.role,
        )
        return Resolved(
            SessionHead.of(row), created=False, principal=member, role=Role(device.role)
        )

    async def _check_device(self, principal: Principal) -> None:
        """A device token is good while its device is neither revoked nor expired."""
        assert principal.device_id is not None
        async with self._store.uow() as uow:
            device = await uow.devices.get(principal.device_id)
        if device is None or device.session_id != principal.session_scope:
            raise Unauthorized("this device is unknown")
        if device.revoked_at is not None:
            raise Unauthorized("this device was removed from the session")
        if device.expires_at <= now_ms():
            raise Unauthorized("this device's access has expired: join again")

    async def issue_join_code(
        self, principal: Principal, session_id: str, role: Role = Role.COMPANION
    ) -> dict[str, Any]:
        """A one-time join code for the session, for a device of ``role``."""
        if role not in policy.DEVICE_ROLES:
            raise BadRequest("role must be companion or observer")
        row = await self.authorize(principal, session_id, Action.INVITE)
        if row.ended_at is not None:
            raise SessionEnded("this session has ended")
        code = self._tokens.new_join_code()
        expires_at = now_ms() + self._join_ttl_ms
        async with self._store.uow() as uow:
            uow.join_tokens.add(
                JoinTokenRow(
                    jti=code,
                    session_id=session_id,
                    created_by=principal.sub,
                    expires_at=expires_at,
                    role=role.value,
                )
            )
            await uow.commit()
        return {"join_token": code, "expires_at": expires_at, "role": role.value}

    async def devices(self, principal: Principal, session_id: str) -> list[dict[str, Any]]:
        """The devices joined to the session by join code, with whether each is live."""
        await self.authorize(principal, session_id, Action.DEVICES)
        async with self._store.uow() as uow:
            rows = await uow.devices.of_session(session_id)
        connected = {m.get("device_id") for m in await self._presence.members(session_id)}
        return [
            {
                "device_id": d.device_id,
                "role": d.role,
                "joined_at": d.joined_at,
                "expires_at": d.expires_at,
                "connected": d.device_id in connected,
                "revoked": d.revoked_at is not None,
            }
            for d in rows
        ]

    async def revoke_device(self, principal: Principal, session_id: str, device_id: str) -> None:
        """Revoke a joined device: its token is refused from now on, and every process
        closes its connections (the ``device_revoked`` event)."""
        await self.authorize(principal, session_id, Action.DEVICES)
        async with self._store.uow() as uow:
            found = await uow.devices.revoke(session_id, device_id, now_ms())
            await uow.commit()
        if not found:
            raise NotFound(f"no device {device_id!r} in this session")
        await self._publisher.publish(f.DeviceRevoked(session_id=session_id, device_id=device_id))

    async def end(
        self, session_id: str, *, reason: str = "ended", request_id: str | None = None
    ) -> bool:
        """End the session: its active tasks abandoned (PROTOCOL.md section 13) in the
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
        self, uow: UnitOfWork, row: SessionRow, now: int
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
    ) -> tuple[Sequence[SessionRow], str | None]:
        """One page of sessions, and the cursor of the next (None on the last page)."""
        await self._eventlog.flush()
        async with self._store.uow() as uow:
            rows = await uow.sessions.page(
                limit=limit + 1, after_id=after_id, owner_id=owner_id, active=active
            )
        page = rows[:limit]
        return page, (page[-1].id if len(rows) > limit else None)

    async def describe(self, row: SessionRow, *, clients: bool = False) -> dict[str, Any]:
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

    async def fresh(self, principal: Principal, session_id: str) -> SessionRow:
        """:meth:`authorize` to read, then the row after the event log's pending writes
        (``seq`` current)."""
        row = await self.authorize(principal, session_id)
        await self._eventlog.flush()
        return await self.get(session_id) or row
