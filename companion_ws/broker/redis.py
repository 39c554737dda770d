"""The Redis broker: several hub processes as one (Centrifugo's Redis broker is the model).

Per session, under one hash tag so that a Redis Cluster keeps them on one shard::

    {prefix}:{sid}:meta      hash    seq, epoch: the counter and the name of its history
    {prefix}:{sid}:stream    stream  id "<seq>-0", fields k (kind), p (payload); capped
    {prefix}:{sid}:presence  hash    connection_id -> info (JSON)
    {prefix}:{sid}:alive     zset    connection_id -> expiry (ms, Redis clock)
    {prefix}:{sid}           channel "<seq> <epoch> <kind> <payload>"

``publish`` is one Lua script: seed the counter if it is missing, increment it, splice
the seq into the frame, append it to the stream, publish it, refresh the TTLs. Every
process reads one pubsub connection in one task, so the handler sees each session's
events in seq order. When that connection drops, the reader reconnects with backoff,
subscribes again and, before any live message, hands over what the stream holds after
the last seq it delivered: no deaf subscriber (python-socketio #1581, #1411).

When a session's keys are gone (expired, or Redis restarted without persistence) the
next use seeds them from the database (the ``seed`` loader) with a new epoch: seq goes
on after the last persisted event, and a client holding a number from the lost history
is told to resync instead of being replayed something else under the same name.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import json
import logging
from collections.abc import Sequence
from typing import Any

import redis.asyncio as aioredis
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from companion_ws.broker.base import (
    Event,
    EventHandler,
    HistorySlice,
    Position,
    Seed,
    SeedLoader,
    new_epoch,
)
from companion_ws.protocol.codec import encode, frame, with_seq

log = logging.getLogger("companion_ws.broker.redis")

RECONNECT_MIN = 0.05  # seconds; doubles up to RECONNECT_MAX while Redis is away
RECONNECT_MAX = 2.0
READ_TICK = 1.0  # the reader wakes up at least this often
PING_EVERY = 5.0  # an idle pubsub connection is pinged this often...
PING_TIMEOUT = 5.0  # ...and given up on when the pong is this late
SUBSCRIBE_WAIT = 5.0
ECHO_WAIT = 2.0
CATCH_UP_PAGE = 256
REAP_BATCH = 100

# Lua: the seed arguments (seq, epoch) are used only if the session's keys are missing;
# empty, the script answers false and the caller loads a seed and calls again.
_INIT = """
local m = redis.call('HMGET', KEYS[1], 'seq', 'epoch')
if not m[2] then
  if ARGV[2] == '' then return false end
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'seq', ARGV[1], 'epoch', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  m = {ARGV[1], ARGV[2]}
end
"""

PUBLISH = """
local epoch = redis.call('HGET', KEYS[1], 'epoch')
if not epoch then
  if ARGV[5] == '' then return false end
  redis.call('DEL', KEYS[2])
  epoch = ARGV[5]
  redis.call('HSET', KEYS[1], 'seq', ARGV[4], 'epoch', epoch)
end
local seq = redis.call('HINCRBY', KEYS[1], 'seq', 1)
local payload = '{"seq":' .. seq .. ',' .. string.sub(ARGV[1], 2)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[3], seq .. '-0', 'k', ARGV[2], 'p', payload)
redis.call('PUBLISH', ARGV[7], seq .. ' ' .. epoch .. ' ' .. ARGV[2] .. ' ' .. payload)
redis.call('PEXPIRE', KEYS[1], ARGV[6])
redis.call('PEXPIRE', KEYS[2], ARGV[6])
return {seq, epoch}
"""

POSITION = _INIT + "return m\n"

HISTORY = """
local m = redis.call('HMGET', KEYS[1], 'seq', 'epoch')
if not m[2] then
  if ARGV[4] == '' then return false end
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[1], 'seq', ARGV[3], 'epoch', ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[5])
  m = {ARGV[3], ARGV[4]}
end
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)
local after = tonumber(ARGV[1])
local entries = {}
if after < tonumber(m[1]) and tonumber(ARGV[2]) > 0 then
  entries = redis.call('XRANGE', KEYS[2], tostring(after + 1), '+', 'COUNT', ARGV[2])
end
local first_id = false
if #first > 0 then first_id = first[1][1] end
return {m[1], m[2], first_id, entries}
"""

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
"""

# ARGV: ttl_ms, key_ttl_ms, then connection_id, info pairs (add, and the heartbeat)
PRESENCE_TOUCH = (
    _NOW
    + """
for i = 3, #ARGV, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
  redis.call('ZADD', KEYS[2], now + tonumber(ARGV[1]), ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return now
"""
)

PRESENCE_LIST = (
    _NOW
    + """
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], now, '+inf')
local out = {}
for _, id in ipairs(ids) do
  local info = redis.call('HGET', KEYS[1], id)
  if info then out[#out + 1] = info end
end
return out
"""
)

# Remove the entries whose heartbeat expired; each is answered to exactly one caller.
PRESENCE_REAP = (
    _NOW
    + """
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', '(' .. now, 'LIMIT', 0, ARGV[1])
local out = {}
for _, id in ipairs(ids) do
  local info = redis.call('HGET', KEYS[1], id)
  redis.call('HDEL', KEYS[1], id)
  redis.call('ZREM', KEYS[2], id)
  if info then out[#out + 1] = info end
end
return out
"""
)


_SUBSCRIBED = object()  # a pending confirmation that starts a catch-up (after a reconnect)


class RedisBroker:
    def __init__(
        self,
        url: str,
        *,
        history_size: int = 1000,
        history_ttl: float = 86400.0,
        presence_ttl: float = 15.0,
        prefix: str = "cw",
        max_connections: int = 32,
    ) -> None:
        self._size = history_size
        self._ttl_ms = max(1, int(history_ttl * 1000))
        self._presence_ttl = presence_ttl
        self._presence_ms = max(1, int(presence_ttl * 1000))
        self._prefix = prefix
        # No hidden retries: a command that fails is reported, never sent twice. A burst
        # of publishes waits for one of a bounded number of connections.
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=max_connections,
            timeout=5.0,
            socket_connect_timeout=2.0,
            socket_timeout=5.0,
            retry=Retry(NoBackoff(), 0),
        )
        self._redis = aioredis.Redis.from_pool(pool)
        self._publish = self._redis.register_script(PUBLISH)
        self._position = self._redis.register_script(POSITION)
        self._history = self._redis.register_script(HISTORY)
        self._touch = self._redis.register_script(PRESENCE_TOUCH)
        self._list = self._redis.register_script(PRESENCE_LIST)
        self._reap = self._redis.register_script(PRESENCE_REAP)
        self._handler: EventHandler | None = None
        self._seed: SeedLoader | None = None
        self._loading: dict[str, asyncio.Future[Seed]] = {}
        # subscriptions: how many times each session was asked for, its channel, the
        # confirmations still expected per channel, the last event handed over
        self._wanted: dict[str, int] = {}
        self._channels: dict[bytes, str] = {}
        self._pending: dict[bytes, collections.deque[object]] = {}
        self._waiters: dict[bytes, list[asyncio.Future[None]]] = {}
        self._echoes: dict[str, list[tuple[int, str, asyncio.Future[None]]]] = {}
        self._delivered: dict[str, tuple[int, str]] = {}
        self._conn: AbstractConnection | None = None
        self._send_lock = asyncio.Lock()
        self._ping_sent: float | None = None
        # this process's connections, for the heartbeat: session -> connection -> info
        self._local: dict[str, dict[str, str]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        self._was_connected = False

    # ------------------------------------------------------------------ keys

    def _key(self, session_id: str, name: str) -> str:
        return f"{self._prefix}:{{{session_id}}}:{name}"

    def _channel(self, session_id: str) -> bytes:
        return f"{self._prefix}:{{{session_id}}}".encode()

    # ------------------------------------------------------------------ lifecycle

    async def start(self, handler: EventHandler, seed: SeedLoader) -> None:
        self._handler = handler
        self._seed = seed
        try:
            await self._redis.ping()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            log.warning("Redis is not answering yet (%s); retrying in the background", exc)
        self._tasks = [
            asyncio.create_task(self._listen(), name="redis-subscriber"),
            asyncio.create_task(self._heartbeat(), name="redis-presence"),
        ]

    async def close(self) -> None:
        # Besides the cancel, a flag and a closed socket: on Python 3.11 redis-py's
        # wait_for around each write can swallow a cancellation (cpython gh-86296).
        self._closing = True
        for task in self._tasks:
            task.cancel()
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.disconnect(nowait=True)
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=READ_TICK * 3)
        self._tasks = []
        with contextlib.suppress(Exception):
            await self._drop_presence()
        await self._redis.aclose()

    async def ping(self) -> bool:
        """Redis answers, and this process's subscriber is connected (it delivers)."""
        return bool(await self._redis.ping()) and self._conn is not None

    # ------------------------------------------------------------------ seq and history

    async def _load_seed(self, session_id: str) -> tuple[int, str]:
        """Where a session's keys start when they are missing: after the last persisted
        seq (or the last one this process delivered, if later), under a new epoch."""
        pending = self._loading.get(session_id)
        if pending is None:
            assert self._seed is not None, "broker not started"
            pending = asyncio.ensure_future(self._seed(session_id))
            self._loading[session_id] = pending
            pending.add_done_callback(lambda _: self._loading.pop(session_id, None))
        seed = await asyncio.shield(pending)
        seen = self._delivered.get(session_id, (0, ""))[0]
        return max(seed.seq, seen), new_epoch()

    async def publish(self, session_id: str, kind: str, body: bytes) -> Event:
        keys = [self._key(session_id, "meta"), self._key(session_id, "stream")]
        args: list[Any] = [
            body,
            kind,
            self._size,
            0,
            "",
            self._ttl_ms,
            self._channel(session_id),
        ]
        result = await self._publish(keys=keys, args=args)
        if not result:
            args[3], args[4] = await self._load_seed(session_id)
            result = await self._publish(keys=keys, args=args)
        seq, epoch = int(result[0]), _text(result[1])
        event = Event(session_id, seq, epoch, kind, with_seq(body, seq))
        await self._echo(event)
        return event

    async def _echo(self, event: Event) -> None:
        """Wait until this process's subscriber has handed ``event`` over, when the
        session has local clients: as with one process, the effects of a client's
        command reach it before the reply to its next one. Bounded: past ECHO_WAIT the
        clients' gap detection repairs whatever is late."""
        sid = event.session_id
        if sid not in self._wanted or self._conn is None or self._seen(sid, event):
            return
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (event.seq, event.epoch, waiter)
        self._echoes.setdefault(sid, []).append(entry)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), ECHO_WAIT)
        except TimeoutError:
            log.warning("%s #%d was not echoed within %.1fs", sid, event.seq, ECHO_WAIT)
        finally:
            entries = self._echoes.get(sid)
            if entries is not None:
                with contextlib.suppress(ValueError):
                    entries.remove(entry)
                if not entries:
                    del self._echoes[sid]

    def _seen(self, session_id: str, event: Event) -> bool:
        last = self._delivered.get(session_id)
        return last is not None and (last[1] != event.epoch or last[0] >= event.seq)

    async def position(self, session_id: str) -> Position:
        keys = [self._key(session_id, "meta"), self._key(session_id, "stream")]
        result = await self._position(keys=keys, args=[0, "", self._ttl_ms])
        if not result:
            seq, epoch = await self._load_seed(session_id)
            result = await self._position(keys=keys, args=[seq, epoch, self._ttl_ms])
        return Position(int(result[0]), _text(result[1]))

    async def history(self, session_id: str, after_seq: int, limit: int) -> HistorySlice:
        result = await self._read_history(session_id, after_seq, limit, seed=True)
        assert result is not None
        position, first, events = result
        if after_seq > position.seq or after_seq + 1 < first:
            return HistorySlice((), position, False)
        return HistorySlice(events, position, True)

    async def _read_history(
        self, session_id: str, after_seq: int, limit: int, *, seed: bool
    ) -> tuple[Position, int, list[Event]] | None:
        """The position, the first seq kept, and up to ``limit`` events after
        ``after_seq``; None when the keys are missing and ``seed`` is False."""
        keys = [self._key(session_id, "meta"), self._key(session_id, "stream")]
        args: list[Any] = [max(after_seq, 0), limit, 0, "", self._ttl_ms]
        result = await self._history(keys=keys, args=args)
        if not result:
            if not seed:
                return None
            args[2], args[3] = await self._load_seed(session_id)
            result = await self._history(keys=keys, args=args)
        position = Position(int(result[0]), _text(result[1]))
        first = _seq_of_id(result[2]) if result[2] else position.seq + 1
        events = [_event(session_id, position.epoch, entry) for entry in result[3]]
        return position, first, events

    # ------------------------------------------------------------------ subscriptions

    async def subscribe(self, session_id: str) -> None:
        """Called when the session's first local client joins. Returns once Redis has
        confirmed the subscription (or the connection is down: the reader subscribes
        again when it is back, and catches up from the stream)."""
        count = self._wanted.get(session_id, 0)
        self._wanted[session_id] = count + 1
        if count:
            return
        channel = self._channel(session_id)
        self._channels[channel] = session_id
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if not await self._send("SUBSCRIBE", channel, waiter):
            # not connected: the reader subscribes when it is (and catches up from the
            # stream). Only a starting process waits for that; while Redis is away, the
            # join fails on its next command anyway.
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
        channel = self._channel(session_id)
        self._channels.pop(channel, None)
        for waiter in self._waiters.pop(channel, ()):
            _resolve(waiter)
        await self._send("UNSUBSCRIBE", channel, None)

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

    async def _listen(self) -> None:
        """The reader: one pubsub connection, reconnected with backoff for as long as
        the broker runs."""
        delay = RECONNECT_MIN
        pool = self._redis.connection_pool
        while not self._closing:
            conn = pool.connection_class(
                **{**pool.connection_kwargs, "client_name": f"{self._prefix}:subscriber"}
            )
            try:
                await conn.connect()  # type: ignore[no-untyped-call]
                async with self._send_lock:
                    self._pending.clear()
                    channels = [self._channel(sid) for sid in self._wanted]
                    for channel in channels:
                        self._pending[channel] = collections.deque([_SUBSCRIBED])
                    if channels:
                        await conn.send_command("SUBSCRIBE", *channels, check_health=False)
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
            message = await conn.read_response(
                timeout=READ_TICK, disconnect_on_error=False, push_request=True
            )
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
            if kind == b"message":
                self._on_message(message[1], message[2])
            elif kind in (b"subscribe", b"unsubscribe"):
                await self._on_confirmation(message[1])

    async def _on_confirmation(self, channel: bytes) -> None:
        queue = self._pending.get(channel)
        if not queue:
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
        delivered, before any live message (those are deduplicated by seq)."""
        while session_id in self._wanted and not self._closing:
            last = self._delivered.get(session_id, (0, ""))[0]
            result = await self._read_history(session_id, last, CATCH_UP_PAGE, seed=False)
            if result is None or not result[2]:
                return
            for event in result[2]:
                self._deliver(event)

    def _on_message(self, channel: bytes, data: bytes) -> None:
        sid = self._channels.get(channel)
        if sid is None:
            return  # a late message for a session just unsubscribed
        seq, epoch, kind, payload = data.split(b" ", 3)
        self._deliver(Event(sid, int(seq), epoch.decode(), kind.decode(), payload))

    def _deliver(self, event: Event) -> None:
        last = self._delivered.get(event.session_id)
        if last is not None and last[1] == event.epoch and event.seq <= last[0]:
            return  # already handed over (by a catch-up)
        self._delivered[event.session_id] = (event.seq, event.epoch)
        assert self._handler is not None
        try:
            self._handler(event)
        except Exception:
            log.exception("the event handler failed on %s #%d", event.session_id, event.seq)
        for seq, epoch, waiter in self._echoes.get(event.session_id, ()):
            if seq <= event.seq or epoch != event.epoch:
                _resolve(waiter)

    # ------------------------------------------------------------------ presence

    def _presence_keys(self, session_id: str) -> list[str]:
        return [self._key(session_id, "presence"), self._key(session_id, "alive")]

    def _touch_args(self, members: dict[str, str]) -> list[Any]:
        args: list[Any] = [self._presence_ms, self._presence_ms * 3]
        for connection_id, info in members.items():
            args += [connection_id, info]
        return args

    async def presence_add(self, session_id: str, connection_id: str, info: dict[str, Any]) -> None:
        text = json.dumps(info, separators=(",", ":"))
        self._local.setdefault(session_id, {})[connection_id] = text
        await self._touch(
            keys=self._presence_keys(session_id),
            args=self._touch_args({connection_id: text}),
        )

    async def presence_remove(self, session_id: str, connection_id: str) -> None:
        members = self._local.get(session_id)
        if members is not None:
            members.pop(connection_id, None)
            if not members:
                del self._local[session_id]
        presence, alive = self._presence_keys(session_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(presence, connection_id)
            pipe.zrem(alive, connection_id)
            await pipe.execute()

    async def presence(self, session_id: str) -> list[dict[str, Any]]:
        """Every process's live connections to the session; entries whose process
        stopped renewing them are left out."""
        rows = await self._list(keys=self._presence_keys(session_id))
        return [json.loads(row) for row in rows]

    async def _heartbeat(self) -> None:
        """Every presence_ttl/3: renew this process's entries, and remove the expired
        entries of sessions it has clients in, announcing each as ``client_left``."""
        while not self._closing:
            await asyncio.sleep(self._presence_ttl / 3)
            try:
                await self.renew_presence()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("the presence heartbeat failed: %s", exc)

    async def renew_presence(self) -> None:
        sessions = [(sid, dict(members)) for sid, members in self._local.items()]
        if not sessions:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for sid, members in sessions:
                keys = self._presence_keys(sid)
                await self._touch(keys=keys, args=self._touch_args(members), client=pipe)
                await self._reap(keys=keys, args=[REAP_BATCH], client=pipe)
            results = await pipe.execute()
        for sid, members in sessions:  # left while the renewal was on its way: not back
            for connection_id in members:
                if connection_id not in self._local.get(sid, {}):
                    await self.presence_remove(sid, connection_id)
        for (sid, _), dead in zip(sessions, results[1::2], strict=True):
            for row in dead:
                info = json.loads(row)
                body = encode(frame("client_left", sid, **info))
                await self.publish(sid, "client_left", body)

    async def _drop_presence(self) -> None:
        """On close: this process's entries go now instead of after their expiry."""
        if not self._local:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for sid, members in self._local.items():
                presence, alive = self._presence_keys(sid)
                pipe.hdel(presence, *members)
                pipe.zrem(alive, *members)
            await pipe.execute()
        self._local.clear()


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _seq_of_id(entry_id: bytes | str) -> int:
    return int(_text(entry_id).split("-", 1)[0])


def _event(session_id: str, epoch: str, entry: Sequence[Any]) -> Event:
    entry_id, raw = entry
    fields = dict(zip(raw[::2], raw[1::2], strict=True))
    return Event(session_id, _seq_of_id(entry_id), epoch, _text(fields[b"k"]), fields[b"p"])
