"""A session's devices (docs/protocol.md sections 5 and 11): one-time join codes for a new
device, the devices joined with them, and revoking one."""

from __future__ import annotations

from typing import Any

from companion_ws.auth import policy
from companion_ws.auth.policy import Action, Role
from companion_ws.auth.tokens import Principal, TokenService
from companion_ws.broker.base import Presence
from companion_ws.hub.directory import SessionDirectory
from companion_ws.hub.publisher import Publisher
from companion_ws.protocol import frames as f
from companion_ws.protocol.codec import now_ms
from companion_ws.protocol.errors import BadRequest, NotFound, SessionEnded
from companion_ws.store.store import Store

__all__ = ["Devices"]


class Devices:
    def __init__(
        self,
        store: Store,
        directory: SessionDirectory,
        publisher: Publisher,
        presence: Presence,
        tokens: TokenService,
        *,
        join_token_ttl: float,
    ) -> None:
        self._store = store
        self._directory = directory
        self._publisher = publisher
        self._presence = presence
        self._tokens = tokens
        self._join_ttl_ms = int(join_token_ttl * 1000)

    async def issue_join_code(
        self, principal: Principal, session_id: str, role: Role = Role.COMPANION
    ) -> dict[str, Any]:
        """A one-time join code for the session, for a device of ``role``."""
        if role not in policy.DEVICE_ROLES:
            raise BadRequest("role must be companion or observer")
        row = await self._directory.authorize(principal, session_id, Action.INVITE)
        if row.ended_at is not None:
            raise SessionEnded("this session has ended")
        code = self._tokens.new_join_code()
        expires_at = now_ms() + self._join_ttl_ms
        async with self._store.uow() as uow:
            uow.join_tokens.add(
                code,
                session_id=session_id,
                created_by=principal.sub,
                expires_at=expires_at,
                role=role.value,
            )
            await uow.commit()
        return {"join_token": code, "expires_at": expires_at, "role": role.value}

    async def of_session(self, principal: Principal, session_id: str) -> list[dict[str, Any]]:
        """The devices joined to the session by join code, with whether each is live."""
        await self._directory.authorize(principal, session_id, Action.DEVICES)
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

    async def revoke(self, principal: Principal, session_id: str, device_id: str) -> None:
        """Revoke a joined device: its token is refused from now on, and every process
        closes its connections (the ``device_revoked`` event)."""
        await self._directory.authorize(principal, session_id, Action.DEVICES)
        async with self._store.uow() as uow:
            found = await uow.devices.revoke(session_id, device_id, now_ms())
            await uow.commit()
        if not found:
            raise NotFound(f"no device {device_id!r} in this session")
        await self._publisher.publish(f.DeviceRevoked(session_id=session_id, device_id=device_id))
