"""The node: the lifecycle and the broker's handler. It builds the services (the session
directory, admission, recovery, state, the tool runner, the command router) and hands
each only the collaborators it uses; adapters (the socket endpoint, the HTTP API, the
webhooks) are given the services, never the store or the broker.

    endpoint -> codec -> policy -> services -> reducer -> store -> broker -> hub -> outbox

The node registers itself as the broker's handler; the broker never knows the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from companion_ws.auth.policy import DEVICE_ROLES
from companion_ws.auth.tokens import TokenService
from companion_ws.broker.base import Broker
from companion_ws.hub.admission import Admission, AdmissionLimits
from companion_ws.hub.commands import CommandRouter
from companion_ws.hub.conversation import ConversationService
from companion_ws.hub.credentials import Credentials
from companion_ws.hub.devices import Devices
from companion_ws.hub.directory import SessionDirectory
from companion_ws.hub.hub import Hub
from companion_ws.hub.idempotent import IdempotentPublisher
from companion_ws.hub.joins import Joins
from companion_ws.hub.lifetimes import Lifetimes
from companion_ws.hub.listeners import Listeners
from companion_ws.hub.locks import KeyedLock
from companion_ws.hub.owed import Owed
from companion_ws.hub.publisher import Publisher
from companion_ws.hub.recovery import Recovery
from companion_ws.hub.seeder import Seeder
from companion_ws.hub.state import StateService
from companion_ws.hub.streams import Streams
from companion_ws.hub.toolrunner import ToolRunner
from companion_ws.hub.voice import VoiceFloor
from companion_ws.metrics import Metrics
from companion_ws.protocol import frames as f
from companion_ws.protocol.closecodes import Close
from companion_ws.protocol.replies import error_frame
from companion_ws.settings import Settings
from companion_ws.store.eventlog import EventLog
from companion_ws.store.store import Store
from companion_ws.tools.registry import ToolRegistry
from companion_ws.values import Event, Leave

__all__ = ["Node"]

log = logging.getLogger("companion_ws.node")

# How long stop() lets background tasks (repairs, unsubscribes) finish before cancelling.
STOP_GRACE = 5.0


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
        eventlog: EventLog,
    ) -> None:
        ttl_ms = int(settings.session_ttl * 1000)
        self._store = store
        self._broker = broker
        self._metrics = metrics
        self._sweep_interval = settings.sweep_interval
        self._hub = Hub()
        self._eventlog = eventlog
        self._seeder = Seeder(
            store, history_size=settings.history_size, keep_epoch=broker.journaled
        )
        locks = KeyedLock()
        publisher = Publisher(
            broker, self._eventlog, metrics, max_event_bytes=settings.max_event_bytes
        )
        self.publisher = publisher
        #: What committed effects owe the screens, published once even after a crash.
        self.owed = Owed(
            store,
            publisher,
            lambda sid, after, limit: self.recovery.history(sid, after, limit),
            lease=settings.owed_lease,
        )
        self.state = StateService(
            store,
            publisher,
            locks,
            metrics,
            max_state_bytes=settings.max_state_bytes,
            ttl_ms=ttl_ms,
            refusal=tools.refusal,
            owed=self.owed,
        )
        #: Whether a credential is still good, for every door and every stream.
        self.credentials = Credentials(store, grace=settings.refresh_grace)
        self.sessions = SessionDirectory(
            store,
            publisher,
            self.state,
            locks,
            broker.presence,
            self._eventlog,
            self.credentials,
            ttl_ms=ttl_ms,
            retention_ms=int(settings.retention * 1000),
            create_rate=settings.session_create_rate,
            create_burst=settings.session_create_burst,
        )
        self.joins = Joins(store, self.sessions, self.credentials, device_ttl=settings.device_ttl)
        self.devices = Devices(
            store,
            self.sessions,
            publisher,
            broker.presence,
            tokens,
            join_token_ttl=settings.join_token_ttl,
        )
        self.recovery = Recovery(
            broker, self.state, store, self._eventlog, locks, outbox_limit=settings.outbox_limit
        )
        self._lifetimes = Lifetimes(self.credentials, lead=settings.refresh_lead)
        self.conversation = ConversationService(store, self._eventlog)
        self.tools = ToolRunner(store, self.state, publisher, tools, locks, metrics, self.owed)
        # Backends (gRPC, the bus): one effect per idempotency key, and live listeners.
        self.backend = IdempotentPublisher(store, publisher, self.owed, lease=settings.bus_ack_wait)
        self.listeners = Listeners(broker)
        #: The open AG-UI and gRPC streams, each held for as long as its credential.
        self.streams = Streams(
            broker,
            self.credentials,
            self._lifetimes,
            max_per_user=settings.max_streams_per_user,
        )
        #: Extra readiness checks (the bus bridge adds one when it runs).
        self.checks: dict[str, Callable[[], Awaitable[bool]]] = {}
        #: The voice floor (docs/protocol.md section 17).
        self.voice = VoiceFloor(broker, publisher, self._spawn, grace=settings.presence_ttl)
        self.admission = Admission(
            self._hub,
            broker,
            self.joins,
            self.recovery,
            publisher,
            self._eventlog,
            tokens,
            metrics,
            AdmissionLimits(
                max_per_user=settings.max_connections_per_user,
                outbox_limit=settings.outbox_limit,
                send_queue_bytes=settings.send_queue_bytes,
                grace=settings.slow_close_grace,
                reconnect_ttl=settings.reconnect_token_ttl,
                capability_ttl=settings.agent_capability_ttl,
            ),
            self._spawn,
            self._lifetimes,
            self.voice,
        )
        self.commands = CommandRouter(
            self.sessions,
            self.state,
            self.recovery,
            self.tools,
            publisher,
            broker.presence,
            self._eventlog,
            metrics,
            tokens,
            self._lifetimes,
            self.voice,
        )
        self._tasks: set[asyncio.Task[Any]] = set()
        self._sweeper: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        #: Set when the server starts shutting down, before it waits for open responses:
        #: long-lived ones (the AG-UI streams) end then instead of holding it up.
        self.draining = asyncio.Event()

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        await self._broker.start(self._on_event, self._seeder, self._on_leave)
        self._eventlog.start()
        self._lifetimes.start()
        self._sweeper = asyncio.create_task(self._sweep_loop(), name="expiry-sweep")
        self.owed.start()

    def drain(self) -> None:
        """The server is going away: end long-lived HTTP responses now (a socket is
        closed 1012 by the server itself)."""
        self.draining.set()

    async def stop(self) -> None:
        # Background work is asked to finish, not cancelled: a task cancelled inside a
        # unit of work can wedge the SQLite driver (companion_ws.store.uow).
        self._stopping.set()
        self.voice.stop()
        if self._sweeper is not None:
            await self._sweeper
        await self.owed.stop()
        if self._tasks:
            _, late = await asyncio.wait(list(self._tasks), timeout=STOP_GRACE)
            for task in late:
                log.warning("cancelling %s, still running at shutdown", task.get_name())
                task.cancel()
        await self._lifetimes.stop()
        await self._eventlog.stop()
        # Everything published is in the event log now: the history survives a restart.
        await self._seeder.mark_clean()
        await self._broker.close()

    async def ready(self) -> dict[str, bool]:
        """Whether the database answers, is migrated to this code's schema, and whether
        the broker answers."""
        database = await self._store.ping()
        schema = database and await self._store.schema_ready()
        try:
            broker = await self._broker.ping()
        except Exception:
            broker = False
        checks = {"database": database, "schema": schema, "broker": broker}
        for name, check in self.checks.items():
            try:
                checks[name] = await check()
            except Exception:
                checks[name] = False
        return checks

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _sweep_loop(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._sweep_interval)
            if self._stopping.is_set():
                return
            try:
                await self.sessions.sweep()
            except Exception:
                log.exception("the expiry sweep failed")

    # ---------------------------------------------------------------- the broker's handler

    def _on_event(self, event: Event) -> None:
        if not self._broker.journaled:
            self._eventlog.append(event)
        gaps = self._hub.deliver(event)
        self._metrics.deliveries.inc(self._hub.count(event.session_id))
        for conn in gaps:
            self._spawn(self.recovery.repair(conn))
        if event.kind == "session_ended":
            for conn in self._hub.connections(event.session_id):
                conn.end_session()  # no client_left after it
        elif event.kind == "device_revoked":
            self._cut_off(event)
        if self.listeners.active:
            self.listeners.feed(event)
        # After the listeners: a stream that reads the session has its last events
        # queued before it is told that the session ended.
        self.streams.on_event(event)

    def _cut_off(self, event: Event) -> None:
        """A revoked device's connections here: ``forbidden``, then 4403 (its streams
        are cut by :meth:`Streams.on_event`)."""
        device_id = self.credentials.revoked(event)
        revoked = self.credentials.cut_off()
        for conn in self._hub.connections(event.session_id):
            if conn.device_id == device_id and conn.role in DEVICE_ROLES:
                conn.send(error_frame(event.session_id, revoked, None))
                conn.outbox.close(Close.FORBIDDEN, revoked.message)

    def _on_leave(self, leave: Leave) -> None:
        """A connection of a process that died: announce it as ``client_left``. One of
        this process's own, announced gone by another while this one stalled: close it
        1012, so its client reconnects and resumes as a new, announced connection
        (docs/protocol.md section 4, *presence tells the truth*)."""
        if leave.mine:
            for conn in self._hub.connections(leave.session_id):
                if conn.id == leave.info.get("connection_id"):
                    log.warning("closing %s: announced gone while this process stalled", conn.id)
                    conn.announced_gone = True  # its client_left is out: not twice
                    conn.outbox.close(Close.RESTARTING, "presence lost while the hub stalled")
            return
        self._spawn(self.publisher.publish(f.ClientLeft(session_id=leave.session_id, **leave.info)))
        connection_id = leave.info.get("connection_id")
        if isinstance(connection_id, str):
            self.voice.left(leave.session_id, connection_id, here=False)
