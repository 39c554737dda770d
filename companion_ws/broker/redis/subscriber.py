"""The pub/sub reader: one connection per process (per shard on a Redis Cluster, where
``cluster.py`` routes each session to its shard's reader), read by one task, so the
handler sees each session's events in seq order.

When that connection drops, the reader reconnects with backoff, subscribes again and,
before any live message, hands over what the stream holds after the last seq it
delivered: no deaf subscriber (python-socketio #1581, #1411). An idle connection is
pinged, and given up on when the pong is late. A publisher waits (boundedly) for its own
event to come back through here (the echo barrier, ``echo.py``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
from collections.abc import Awaitable, Callable

from redis.asyncio.connection import AbstractConnection
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from companion_ws.broker.base import EventHandler
from companion_ws.broker.redis.echo import EchoBarrier
from companion_ws.broker.redis.keys import Keys
from companion_ws.values import Event

log = logging.getLogger("companion_ws.broker.redis")

RECONNECT_MIN = 0.05  # seconds; doubles up to RECONNECT_MAX while Redis is away
RECONNECT_MAX = 2.0
READ_TICK = 1.0  # the reader wakes up at least this often
PING_EVERY = 5.0  # an idle pubsub connection is pinged this often...
PING_TIMEOUT = 5.0  # ...and given up on when the pong is this late
SUBSCRIBE_WAIT = 5.0
CATCH_UP_PAGE = 256

# (sid, the last event handed over, limit): the events after it (Streams.since)
CatchUp = Callable[[str, Event | None, int], Awaitable[list[Event]]]
Connect = Callable[[], AbstractConnection]  # a new, unconnected connection to the node
Delivered = dict[str, Event]  # session -> the last event handed over

_SUBSCRIBED = object()  # a pending confirmation that starts a catch-up (after a reconnect)


class Subscriber:
    """``sharded``: SSUBSCRIBE on one shard of a cluster; a reply that says the slot is
    served elsewhere (MOVED, or Redis unsubscribing a channel whose slot moved away)
    calls ``on_moved``. The readers of one cluster share ``delivered`` and ``echoes``,
    so a session that changes shard goes on from its last seq."""

    def __init__(
        self,
        connect: Connect,
        keys: Keys,
        catch_up: CatchUp,
        *,
        sharded: bool = False,
        on_moved: Callable[[], None] = lambda: None,
        delivered: Delivered | None = None,
        echoes: EchoBarrier | None = None,
    ) -> None:
        self._connect = connect
        self._keys = keys
        self._sharded = sharded
        self._on_moved = on_moved
        prefix = "S" if sharded else ""
        self._subscribe_cmd = f"{prefix}SUBSCRIBE"
        self._unsubscribe_cmd = f"{prefix}UNSUBSCRIBE"
        self._message = b"smessage" if sharded else b"message"
        self._confirmations = (
            (b"ssubscribe", b"sunsubscribe") if sharded else (b"subscribe", b"unsubscribe")
        )
        self._read_stream = catch_up
        self._handler: EventHandler | None = None
        # how many times each session was asked for, its channel, the confirmations
        # still expected per channel, the subscribes waiting for the next connection
        self._wanted: dict[str, int] = {}
        self._channels: dict[bytes, str] = {}
        self._pending: dict[bytes, collections.deque[object]] = {}
        self._waiters: dict[bytes, list[asyncio.Future[None]]] = {}
        # the last event handed over per session, and the publishers awaiting theirs
        self._delivered: Delivered = {} if delivered is None else delivered
        self._echoes = EchoBarrier() if echoes is None else echoes
        self._conn: AbstractConnection | None = None
        self._send_lock = asyncio.Lock()
        self._ping_sent: float | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._was_connected = False

    @property
    def connected(self) -> bool:
        return self._conn is not None

    def last_seq(self, session_id: str) -> int:
        """The seq of the last event of the session handed over (0: none)."""
        last = self._delivered.get(session_id)
        return last.seq if last is not None else 0

    def start(self, handler: EventHandler) -> None:
        self._handler = handler
        self._task = asyncio.create_task(self._listen(), name="redis-subscriber")

    async def close(self) -> None:
        # Besides the cancel, a flag and a closed socket: on Python 3.11 redis-py's
        # wait_for around each write can swallow a cancellation (cpython gh-86296).
        self._closing = True
        if self._task is not None:
            self._task.cancel()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.disconnect(nowait=True)
        if self._task is not None:
            await asyncio.wait([self._task], timeout=READ_TICK * 3)
        self._task = None

    # ------------------------------------------------------------------ subscriptions

    async def subscribe(self, session_id: str, *, catch_up: bool = False) -> None:
        """Called when the session's first local client joins. Returns once Redis has
        confirmed the subscription (or the connection is down: the reader subscribes
        again when it is back, and catches up from the stream). ``catch_up``: the
        session comes from another shard's reader; hand over what the stream holds
        after its last seq before any live message."""
        count = self._wanted.get(session_id, 0)
        self._wanted[session_id] = count + 1
        if count:
            return
        channel = self._keys.channel(session_id)
        self._channels[channel] = session_id
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if catch_up:
            self._waiters.setdefault(channel, []).append(waiter)
            sent = await self._send(self._subscribe_cmd, channel, _SUBSCRIBED)
        else:
            sent = await self._send(self._subscribe_cmd, channel, waiter)
        if not sent:
            # not connected: the reader subscribes when it is (and catches up from the
            # stream). Only a starting process waits for that; while Redis is away, the
            # join fails on its next command anyway.
            if not catch_up:
                self._waiters.setdefault(channel, []).append(waiter)
            if self._was_connected:
                return
        try:
            await asyncio.wait_for(asyncio.shield(waiter), SUBSCRIBE_WAIT)
        except TimeoutError:
            log.warning("the subscription to %s is not confirmed yet", session_id)

    async def unsubscribe(self, session_id: str) -> None:
        """Called when the session's last local client leaves. Counted, so that a
        subscribe that overtook this call keeps the subscription."""
        count = self._wanted.get(session_id, 0) - 1
        if count > 0:
            self._wanted[session_id] = count
            return
        self._wanted.pop(session_id, None)
        self._delivered.pop(session_id, None)
        channel = self._keys.channel(session_id)
        self._channels.pop(channel, None)
        for waiter in self._waiters.pop(channel, ()):
            _resolve(waiter)
        await self._send(self._unsubscribe_cmd, channel, None)

    def forget(self, session_id: str) -> None:
        """The session's slot is served by another shard now: stop routing it here
        (Redis has unsubscribed it already), keeping its last seq for the next reader."""
        self._wanted.pop(session_id, None)
        channel = self._keys.channel(session_id)
        self._channels.pop(channel, None)
        for item in self._pending.pop(channel, ()):
            if isinstance(item, asyncio.Future):
                _resolve(item)
        for waiter in self._waiters.pop(channel, ()):
            _resolve(waiter)

    @property
    def sessions(self) -> list[str]:
        """The sessions this reader delivers."""
        return list(self._wanted)

    async def echo(self, event: Event) -> None:
        """Wait (boundedly) until this reader has handed ``event`` over, when the
        session has local clients: the echo barrier."""
        if event.session_id in self._wanted and self._conn is not None and not self._seen(event):
            await self._echoes.wait(event)

    def _seen(self, event: Event) -> bool:
        last = self._delivered.get(event.session_id)
        return last is not None and (last.epoch != event.epoch or last.seq >= event.seq)

    async def _send(self, command: str, channel: bytes, expect: object) -> bool:
        """Send (UN)SUBSCRIBE on the pubsub connection; False when it is down."""
        async with self._send_lock:
            conn = self._conn
            if conn is None:
                return False
            self._pending.setdefault(channel, collections.deque()).append(expect)
            try:
                await conn.send_command(command, channel, check_health=False)
            except Exception as exc:  # the reader notices the broken connection too
                log.warning("%s %r failed: %s", command, channel, exc)
                return False
        return True

    # ------------------------------------------------------------------ the reader

    async def _listen(self) -> None:
        """One pubsub connection, reconnected with backoff for as long as the broker
        runs."""
        delay = RECONNECT_MIN
        while not self._closing:
            conn = self._connect()
            try:
                await conn.connect()  # type: ignore[no-untyped-call]
                async with self._send_lock:
                    self._pending.clear()
                    channels = [self._keys.channel(sid) for sid in self._wanted]
                    for channel in channels:
                        self._pending[channel] = collections.deque([_SUBSCRIBED])
                    if channels and self._sharded:  # one SSUBSCRIBE per slot
                        for channel in channels:
                            await conn.send_command(
                                self._subscribe_cmd, channel, check_health=False
                            )
                    elif channels:
                        await conn.send_command(self._subscribe_cmd, *channels, check_health=False)
                    self._conn = conn
                    self._was_connected = True
                    self._ping_sent = None
                if delay > RECONNECT_MIN:
                    log.warning("the Redis subscriber is back (%d sessions)", len(channels))
                delay = RECONNECT_MIN
                await self._read(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self._closing and (self._conn is not None or delay == RECONNECT_MIN):
                    log.warning("the Redis subscriber lost its connection: %s", exc)
            finally:
                self._conn = None
                self._park_waiters()
                with contextlib.suppress(Exception):
                    await conn.disconnect(nowait=True)
            await asyncio.sleep(delay)
            delay = min(delay * 2, RECONNECT_MAX)

    def _park_waiters(self) -> None:
        """The connection is gone: subscribes still waiting for their confirmation
        wait for the next connection's instead."""
        for channel, queue in self._pending.items():
            for item in queue:
                if isinstance(item, asyncio.Future) and not item.done():
                    self._waiters.setdefault(channel, []).append(item)
        self._pending.clear()

    async def _read(self, conn: AbstractConnection) -> None:
        loop = asyncio.get_running_loop()
        idle_since = loop.time()
        while not self._closing:
            try:
                message = await conn.read_response(
                    timeout=READ_TICK, disconnect_on_error=False, push_request=True
                )
            except ResponseError as exc:  # MOVED: a channel's slot is served elsewhere
                log.warning("the Redis subscriber was refused: %s", exc)
                self._on_moved()
                continue
            now = loop.time()
            if message is None:
                if self._ping_sent is not None:
                    if now - self._ping_sent > PING_TIMEOUT:
                        raise RedisTimeoutError("the pubsub connection stopped answering")
                elif now - idle_since > PING_EVERY:
                    async with self._send_lock:
                        await conn.send_command("PING", check_health=False)
                    self._ping_sent = now
                continue
            idle_since = now
            self._ping_sent = None
            if not isinstance(message, list):
                continue  # the pong
            kind = message[0]
            if kind == self._message:
                self._on_message(message[1], message[2])
            elif kind in self._confirmations:
                await self._on_confirmation(message[1], kind == self._confirmations[1])

    async def _on_confirmation(self, channel: bytes, unsubscribed: bool) -> None:
        queue = self._pending.get(channel)
        if not queue:
            if unsubscribed and channel in self._channels:
                self._on_moved()  # Redis dropped it: its slot moved to another shard
            return
        item = queue.popleft()
        if not queue:
            del self._pending[channel]
        if isinstance(item, asyncio.Future):
            _resolve(item)
        elif item is _SUBSCRIBED:
            sid = self._channels.get(channel)
            if sid is not None:
                await self._catch_up(sid)
            for waiter in self._waiters.pop(channel, ()):
                _resolve(waiter)

    async def _catch_up(self, session_id: str) -> None:
        """After a reconnect: hand over what the stream holds after the last event
        delivered, before any live message (those are deduplicated by seq). A stream
        that went back behind that event is renamed first (``Streams.since``)."""
        while session_id in self._wanted and not self._closing:
            last = self._delivered.get(session_id)
            events = await self._read_stream(session_id, last, CATCH_UP_PAGE)
            if not events:
                return
            for event in events:
                self._deliver(event)

    def _on_message(self, channel: bytes, data: bytes) -> None:
        sid = self._channels.get(channel)
        if sid is None:
            return  # a late message for a session just unsubscribed
        seq, epoch, kind, payload = data.split(b" ", 3)
        self._deliver(Event(sid, int(seq), epoch.decode(), kind.decode(), payload))

    def _deliver(self, event: Event) -> None:
        last = self._delivered.get(event.session_id)
        if last is not None and last.epoch == event.epoch and event.seq <= last.seq:
            return  # already handed over (by a catch-up)
        self._delivered[event.session_id] = event
        assert self._handler is not None
        try:
            self._handler(event)
        except Exception:
            log.exception("the event handler failed on %s #%d", event.session_id, event.seq)
        self._echoes.release(event)


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)
