"""Where a connect lands: the join rules (``join_rules.plan``) applied to the session
as it is now, and one-time join codes consumed by the device they admit."""

from __future__ import annotations

import json
from dataclasses import dataclass

from companion_ws.auth import policy
from companion_ws.auth.policy import Role
from companion_ws.auth.tokens import DEVICE, Principal
from companion_ws.hub.credentials import Credentials
from companion_ws.hub.directory import SessionDirectory, new_id
from companion_ws.hub.join_rules import Join, plan
from companion_ws.protocol.codec import now_ms
from companion_ws.protocol.errors import Forbidden, SessionEnded, Unauthorized
from companion_ws.store.store import Store
from companion_ws.values import Device, Session, SessionHead
from ui_state.restore import unfinished_task

__all__ = ["Joins", "Resolved"]


@dataclass(frozen=True, slots=True)
class Resolved:
    """The session a connect lands in, why (docs/protocol.md section 1), and as whom: the
    connection's principal (a joined device's, after a join code), role and device."""

    row: SessionHead
    created: bool
    principal: Principal
    role: Role
    requested: str | None = None
    reason: str | None = None


class Joins:
    def __init__(
        self,
        store: Store,
        directory: SessionDirectory,
        credentials: Credentials,
        *,
        device_ttl: float,
    ) -> None:
        self._store = store
        self._directory = directory
        self._credentials = credentials
        self._device_ttl_ms = int(device_ttl * 1000)

    async def resolve(self, principal: Principal, requested: str | None, client: str) -> Resolved:
        """docs/protocol.md section 1's join rules, and section 11's roles."""
        if principal.is_join:
            return await self._consume(principal, requested, client)
        if requested is None and principal.session_scope is not None:
            requested = principal.session_scope
        policy.check_scope(principal, requested)
        await self._credentials.check(principal)
        # Read on every connect, never cached: another process may have ended it.
        head = await self._store.session_head(requested) if requested is not None else None
        if head is not None and head.ended_at is None and head.expires_at <= now_ms():
            await self._directory.end(head.id, reason="expired")
            head = await self._store.session_head(head.id)
        landing = plan(principal, requested, head, client)
        if isinstance(landing, Join):
            assert head is not None
            return Resolved(head, created=False, principal=principal, role=landing.role)
        ended = await self._restores_itself(head) if landing.carry_on and head else None
        self._directory.charge(principal)
        fresh = (
            await self._directory.carry_on(ended)
            if ended
            else await self._directory.create(principal.sub)
        )
        role = policy.socket_role(principal, fresh.id, fresh.owner_id, client)
        return Resolved(
            fresh.head(),
            created=True,
            principal=principal,
            role=role,
            requested=requested,
            reason=landing.reason,
        )

    async def _restores_itself(self, head: SessionHead) -> Session | None:
        """The caller's own expired session, if it had an unfinished task: it carries
        on in a new session, with its state (section 13)."""
        row = await self._directory.get(head.id)
        if row is None or unfinished_task(json.loads(row.state or "{}")) is None:
            return None
        return row

    async def _consume(self, principal: Principal, requested: str | None, client: str) -> Resolved:
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
            device = Device(
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
        return Resolved(row.head(), created=False, principal=member, role=Role(device.role))
