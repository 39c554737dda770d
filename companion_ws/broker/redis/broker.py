"""The Redis broker: several hub processes as one (Centrifugo's Redis broker is the
model). It composes the session streams (seq, history), the subscriber (fan-out to
this process) and presence, over one bounded connection pool: on one Redis
(``redis://``), or on a Redis Cluster (``redis+cluster://``, ``cluster.py``)."""

from __future__ import annotations

import logging

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from companion_ws.broker.base import EventHandler, LeaveHandler, SeedLoader
from companion_ws.broker.redis.cluster import SCHEME, ShardedSubscriber, cluster_client
from companion_ws.broker.redis.keys import Client, Keys
from companion_ws.broker.redis.presence import RedisPresence
from companion_ws.broker.redis.stream import Streams
from companion_ws.broker.redis.subscriber import Subscriber
from companion_ws.values import Event, HistorySlice, Position

log = logging.getLogger("companion_ws.broker.redis")


class RedisBroker:
    #: The stream is the durability: every event is in it before anyone receives it;
    #: the node writes the database's event log off the hot path.
    journaled = False

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
        keys = Keys(prefix)
        ttl_ms = max(1, int(history_ttl * 1000))
        self._redis: Client
        self._subscriber: Subscriber | ShardedSubscriber
        if url.startswith(SCHEME):
            cluster = cluster_client(url, max_connections=max_connections)
            self._redis = cluster
            self._streams = Streams(cluster, keys, size=history_size, ttl_ms=ttl_ms, sharded=True)
            self._subscriber = ShardedSubscriber(cluster, keys, self._streams.since)
        else:
            # No hidden retries: a command that fails is reported, never sent twice. A
            # burst of publishes waits for one of a bounded number of connections.
            pool = aioredis.BlockingConnectionPool.from_url(
                url,
                max_connections=max_connections,
                timeout=5.0,
                socket_connect_timeout=2.0,
                socket_timeout=5.0,
                retry=Retry(NoBackoff(), 0),
            )
            self._redis = aioredis.Redis.from_pool(pool)
            self._streams = Streams(self._redis, keys, size=history_size, ttl_ms=ttl_ms)
            self._subscriber = Subscriber(
                lambda: pool.connection_class(
                    **{**pool.connection_kwargs, "client_name": f"{prefix}:subscriber"}
                ),
                keys,
                self._streams.since,
            )
        self.presence = RedisPresence(self._redis, keys, ttl=presence_ttl)

    async def start(self, handler: EventHandler, seed: SeedLoader, on_leave: LeaveHandler) -> None:
        """Begin delivering events to ``handler``; ``seed`` starts missing streams."""
        self._streams.start(seed, self._subscriber.last_seq)
        try:
            await self._redis.ping()
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            log.warning("Redis is not answering yet (%s); retrying in the background", exc)
        self._subscriber.start(handler)
        self.presence.start(on_leave)

    async def close(self) -> None:
        """Stop delivering and withdraw this process's presence."""
        await self._subscriber.close()
        await self.presence.close()
        await self._redis.aclose()

    async def ping(self) -> bool:
        """Redis answers, and this process's subscriber is connected (it delivers)."""
        return bool(await self._redis.ping()) and self._subscriber.connected

    async def publish(self, session_id: str, kind: str, body: bytes) -> Event:
        """Give ``body`` the session's next seq and fan it out; returns once this
        process's subscriber has handed it over (boundedly), when it is subscribed."""
        event = await self._streams.publish(session_id, kind, body)
        await self._subscriber.echo(event)
        return event

    async def swap_floor(
        self, session_id: str, expect: str | None, floor: str, kind: str, body: bytes
    ) -> Event | None:
        """The voice floor's compare-and-set and the publish, in one Lua script."""
        event = await self._streams.swap_floor(session_id, expect, floor, kind, body)
        if event is not None:
            await self._subscriber.echo(event)
        return event

    async def floor(self, session_id: str) -> str:
        """The session's voice floor (``""``: none)."""
        return await self._streams.floor(session_id)

    async def subscribe(self, session_id: str) -> None:
        """Deliver the session's events to this process (its first local client joined)."""
        await self._subscriber.subscribe(session_id)

    async def unsubscribe(self, session_id: str) -> None:
        """Stop delivering the session's events here (its last local client left)."""
        await self._subscriber.unsubscribe(session_id)

    async def position(self, session_id: str) -> Position:
        """The session's last seq and the epoch it counts in."""
        return await self._streams.position(session_id)

    async def history(self, session_id: str, after_seq: int, limit: int) -> HistorySlice:
        """Up to ``limit`` kept events after ``after_seq``, or unavailable: resync."""
        return await self._streams.history(session_id, after_seq, limit)
