"""Admission: a socket joins a session (quota, join rules, presence, the welcome, then
a replay or the live stream) and leaves it."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from msgspec import UNSET, UnsetType

from companion_ws import telemetry
from companion_ws.auth.policy import Role
from companion_ws.auth.tokens import AGENT, RECONNECT, Principal, TokenService
from companion_ws.broker.base import Broker
from companion_ws.hub.connection import Connection
from companion_ws.hub.hub import Hub
from companion_ws.hub.joins import Joins
from companion_ws.hub.lifetimes import Lifetimes
from companion_ws.hub.outbox import Direct, Outbox, Send
from companion_ws.hub.publisher import Publisher
from companion_ws.hub.quota import PerUser, counted
from companion_ws.hub.recovery import Recovery
from companion_ws.hub.voice import VoiceFloor
from companion_ws.metrics import Metrics
from companion_ws.protocol import frames as f
from companion_ws.protocol.codec import encode
from companion_ws.protocol.errors import TooManyConnections
from companion_ws.store.eventlog import EventLog

__all__ = ["Admission", "AdmissionLimits"]

log = logging.getLogger("companion_ws.admission")

Spawn = Callable[[Coroutine[Any, Any, Any]], None]

#: At most this many joins do their database and broker work at once; the others wait
#: their turn with their socket open. A reconnect storm (a process died, thousands of
#: its clients come back here at once) then queues here, instead of every join taking
#: a broker connection and the joins failing `internal` (and the clients retrying)
#: once the broker's pool is exhausted (docs/scaling.md, bench/storm.py).
JOINING = 16


@dataclass(frozen=True, slots=True)
class AdmissionLimits:
    max_per_user: int
    outbox_limit: int
    send_queue_bytes: int
    grace: float
    reconnect_ttl: float
    capability_ttl: float


class Admission:
    def __init__(
        self,
        hub: Hub,
        broker: Broker,
        joins: Joins,
        recovery: Recovery,
        publisher: Publisher,
        eventlog: EventLog,
        tokens: TokenService,
        metrics: Metrics,
        limits: AdmissionLimits,
        spawn: Spawn,
        lifetimes: Lifetimes,
        voice: VoiceFloor,
    ) -> None:
        self._hub = hub
        self._broker = broker
        self._joins = joins
        self._recovery = recovery
        self._publisher = publisher
        self._eventlog = eventlog
        self._tokens = tokens
        self._metrics = metrics
        self._limits = limits
        self._spawn = spawn
        self._lifetimes = lifetimes
        self._voice = voice
        self._per_user = PerUser(limits.max_per_user)
        self._counted: dict[str, str] = {}  # connection id -> the user whose place it holds
        self._count_slow_close = metrics.slow_closes.inc  # one bound method for every outbox
        self._joining = asyncio.Semaphore(JOINING)

    async def join(self, principal: Principal, **options: Any) -> Connection:
        """Admit a socket (:meth:`admit`, the same arguments), at most ``JOINING`` at
        once."""
        async with self._joining:
            return await self.admit(principal, **options)

    @telemetry.on_connect
    async def admit(
        self,
        principal: Principal,
        *,
        send: Send,
        abort: Callable[[], object],
        requested: str | None,
        client: str,
        last_seq: int | None,
        epoch: str | None,
        device_id: str | None = None,
        direct: Direct | None = None,
    ) -> Connection:
        """Admit a socket: the welcome, ``client_joined``, then a replay from
        ``last_seq`` or the live stream. Raises the error that refuses it. Unbounded:
        sockets join through :meth:`join`."""
        # The user's place is taken before the first await (a join code's user is
        # known only once the code is consumed: its place is taken then).
        held = self._take(principal) if not principal.is_join else None
        try:
            resolved = await self._joins.resolve(principal, requested, client)
            if principal.is_join:
                held = self._take(resolved.principal)
        except BaseException:
            self._give(held)
            raise
        row = resolved.row
        sid = row.id
        member = resolved.principal
        outbox = Outbox(
            send,
            limit=self._limits.outbox_limit,
            max_bytes=self._limits.send_queue_bytes,
            grace=self._limits.grace,
            abort=abort,
            on_overflow=self._count_slow_close,
            direct=direct,
        )
        conn = Connection(
            secrets.token_urlsafe(9),
            sid,
            member,
            client,
            outbox,
            role=resolved.role,
            device_id=member.device_id or device_id or secrets.token_urlsafe(9),
        )
        try:
            if self._hub.add(conn):
                await self._broker.subscribe(sid)
        except BaseException:
            self._hub.remove(conn)
            self._give(held)
            raise
        if held is not None:
            self._counted[conn.id] = held
        self._metrics.connections.inc()
        try:
            await self._broker.presence.add(sid, conn.id, conn.info())
            position = await self._broker.position(sid)
            members = await self._broker.presence.members(sid)
            resumable = (
                last_seq is not None
                and not resolved.created
                and await self._recovery.resumable(sid, last_seq, epoch)
            )
            welcome = f.SessionJoined(
                session_id=sid,
                connection_id=conn.id,
                user_id=conn.user_id,
                created=resolved.created,
                resumed=resumable,  # a replay follows, not a resync
                seq=position.seq,
                epoch=position.epoch,
                state_version=row.state_version,
                clients=len(members),
                reconnect_token=self._reconnect_token(member, sid, row.owner_id),
                role=conn.role,
                device_id=conn.device_id,
                agent_capability=self._capability(conn),
                requested_session_id=f.opt(resolved.requested),
                reason=f.opt(resolved.reason),
                restored_from=f.opt(row.restored_from),
                # Read after ``position``: the floor is as of the welcome's seq or later
                # (docs/protocol.md section 17), which the clients' rule relies on.
                voice_floor=await self._voice.holder(sid),
            )
            conn.send(encode(welcome).decode())
            await self._publisher.publish(f.ClientJoined(session_id=sid, **conn.info()))
            self._eventlog.touch(sid)
            if last_seq is None or resolved.created:
                conn.release(position.seq, position.epoch)
            else:
                await self._recovery.resume(conn, last_seq, epoch)
            self._lifetimes.watch(conn)
        except BaseException:
            await self.leave(conn)
            raise
        return conn

    def _take(self, principal: Principal) -> str | None:
        """A place in the user's cap of sockets, taken now (the check and the
        reservation in one step): the user, or None when not counted (admins,
        services); :class:`TooManyConnections` when the cap is full."""
        if not counted(principal):
            return None
        if not self._per_user.take(principal.sub):
            raise TooManyConnections("too many connections for this user")
        return principal.sub

    def _give(self, held: str | None) -> None:
        if held is not None:
            self._per_user.give(held)

    def _reconnect_token(self, member: Principal, session_id: str, owner: str) -> str | None:
        """What the connection reconnects with, never outliving its credential: a
        device's token keeps its device, role and expiry; the agent capability stays
        itself, with its expiry; a user's reconnect token keeps its principal, scoped to
        the session, expiring no later than the credential that opened the connection."""
        if not self._tokens.can_mint:
            return None
        if member.device_id is not None and member.device_role is not None:
            return self._tokens.mint_device(
                owner, session_id, member.device_id, member.device_role, member.expires_at
            )
        if member.is_capability:
            return self._capability_of(member, session_id)
        return self._tokens.mint_reconnect(member, session_id, self._limits.reconnect_ttl)

    def _capability(self, conn: Connection) -> str | UnsetType:
        """What an agent's ElevenLabs conversation carries as its ``session_id``."""
        if conn.role is not Role.AGENT or not self._tokens.can_mint:
            return UNSET
        return self._capability_of(conn.principal, conn.session_id)

    def _capability_of(self, member: Principal, session_id: str) -> str:
        """The agent capability in the name of whoever connected (never the owner on a
        service's behalf); from a credential the hub issued (a reconnect token, the
        capability itself) it expires no later than that credential."""
        hub_issued = member.token_type in (RECONNECT, AGENT)
        return self._tokens.mint_capability(
            member.sub,
            session_id,
            self._limits.capability_ttl,
            not_after=member.expires_at if hub_issued else None,
        )

    async def leave(self, conn: Connection) -> None:
        """Forget a socket; ``client_left`` to the others unless the session ended."""
        sid = conn.session_id
        if self._hub.remove(conn):
            self._spawn(self._broker.unsubscribe(sid))
        self._metrics.connections.dec()
        self._give(self._counted.pop(conn.id, None))
        self._voice.left(sid, conn.id)
        try:
            await self._broker.presence.remove(sid, conn.id)
            if not conn.ended and not conn.announced_gone:
                await self._publisher.publish(f.ClientLeft(session_id=sid, **conn.info()))
                self._eventlog.touch(sid)
        except Exception as exc:  # the broker is down; presence expires by itself
            log.warning("announcing %s leaving %s failed: %s", conn.id, sid, exc)
