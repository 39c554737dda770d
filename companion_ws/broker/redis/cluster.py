"""The broker on a Redis Cluster (docs/protocol.md section 18): the cluster client, and
the sharded subscriber that routes each session to its shard's reader.

Every key and the channel of a session share its hash tag, so the stream scripts run on
one slot and the channel (``SPUBLISH``/``SSUBSCRIBE``) lives on the same shard. The
client follows ``MOVED``/``ASK`` for commands and scripts. The subscriber keeps one
connection per shard (a ``Subscriber`` each, sharing the last seq handed over per
session); when a shard refuses a channel (MOVED), drops one whose slot moved away, stays
unreachable (its primary failed over), or the client met a MOVED for one of its slots,
and in any case every few seconds, the slot map is read again and each session
whose slot changed shard is subscribed on its new shard, which first hands over what the
stream holds after the session's last seq: no gap, no duplicate.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any
from urllib.parse import urlsplit

from redis.asyncio.cluster import ClusterNode, RedisCluster
from redis.asyncio.connection import AbstractConnection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from companion_ws.broker.base import EventHandler
from companion_ws.broker.redis.echo import EchoBarrier
from companion_ws.broker.redis.keys import Keys
from companion_ws.broker.redis.subscriber import CatchUp, Delivered, Subscriber
from companion_ws.values import Event

log = logging.getLogger("companion_ws.broker.redis")

SCHEME = "redis+cluster://"
WATCH_EVERY = 0.5  # seconds between checks of the readers and the client's slot map
REFRESH_EVERY = 5.0  # the slot map is read again at least this often


def seed_nodes(url: str) -> list[tuple[str, int]]:
    """``redis+cluster://host:port[,host:port...]`` -> the seed nodes (any subset)."""
    if not url.startswith(SCHEME):
        raise ValueError(f"not a Redis Cluster URL: {url!r}")
    netloc = urlsplit("redis://" + url[len(SCHEME) :]).netloc
    nodes = []
    for part in netloc.rsplit("@", 1)[-1].split(","):
        host, _, port = part.strip().rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"a Redis Cluster seed must be host:port, not {part!r} in {url!r}")
        nodes.append((host.strip("[]"), int(port)))
    return nodes


class BoundedCluster(RedisCluster):
    """A cluster client whose commands wait for one of ``bound`` slots: its pools do not
    block (past their size they fail), so a burst of publishes queues here instead."""

    def __init__(self, *, bound: int, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._bound = asyncio.Semaphore(bound)

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        async with self._bound:
            return await super().execute_command(*args, **kwargs)


def cluster_client(url: str, *, max_connections: int) -> RedisCluster:
    """The cluster client. No hidden retries (a command that fails is reported, never
    sent twice); redirections (MOVED, ASK) are followed, and a failed node makes the
    next command read the slot map again."""
    userinfo = urlsplit("redis://" + url[len(SCHEME) :]).netloc.rpartition("@")[0]
    username, _, password = userinfo.partition(":")
    return BoundedCluster(
        bound=max_connections,
        startup_nodes=[ClusterNode(host, port) for host, port in seed_nodes(url)],
        max_connections=max_connections + 8,  # the bound, and the pipelines' own
        socket_connect_timeout=2.0,
        socket_timeout=5.0,
        retry=Retry(NoBackoff(), 0),
        username=username or None,
        password=password or None,
    )


class ShardedSubscriber:
    """The ``Subscriber`` interface over one reader per shard."""

    def __init__(self, cluster: RedisCluster, keys: Keys, catch_up: CatchUp) -> None:
        self._cluster = cluster
        self._keys = keys
        self._catch_up = catch_up
        self._delivered: Delivered = {}
        self._echoes = EchoBarrier()
        self._readers: dict[str, Subscriber] = {}  # node name -> its reader
        self._home: dict[str, str] = {}  # session -> the node name of its reader
        self._wanted: dict[str, int] = {}
        self._handler: EventHandler | None = None
        self._moved = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return all(reader.connected for reader in self._readers.values())

    def last_seq(self, session_id: str) -> int:
        last = self._delivered.get(session_id)
        return last.seq if last is not None else 0

    def start(self, handler: EventHandler) -> None:
        self._handler = handler
        self._task = asyncio.create_task(self._watch(), name="redis-cluster-watch")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=3.0)
        for reader in list(self._readers.values()):
            await reader.close()
        self._readers.clear()

    async def subscribe(self, session_id: str) -> None:
        count = self._wanted.get(session_id, 0)
        self._wanted[session_id] = count + 1
        if count:
            return
        async with self._lock:
            await self._ready()
            node = self._owner(session_id)
            self._home[session_id] = node.name
            reader = self._reader(node)
        await reader.subscribe(session_id)

    async def unsubscribe(self, session_id: str) -> None:
        count = self._wanted.get(session_id, 0) - 1
        if count > 0:
            self._wanted[session_id] = count
            return
        self._wanted.pop(session_id, None)
        name = self._home.pop(session_id, None)
        reader = self._readers.get(name) if name is not None else None
        if reader is not None:
            await reader.unsubscribe(session_id)
        self._delivered.pop(session_id, None)

    async def echo(self, event: Event) -> None:
        name = self._home.get(event.session_id)
        reader = self._readers.get(name) if name is not None else None
        if reader is not None:
            await reader.echo(event)

    # ------------------------------------------------------------------ routing

    async def _ready(self) -> None:
        """The slot map is known, and every primary has its reader (connected before any
        session needs it, so a session's first subscription never replays its stream)."""
        if not self._cluster.get_primaries():
            await self._cluster.initialize()
        for node in self._cluster.get_primaries():
            self._reader(node)

    def _owner(self, session_id: str) -> ClusterNode:
        slot = self._cluster.keyslot(self._keys.channel(session_id))
        return self._cluster.nodes_manager.get_node_from_slot(slot)

    def _reader(self, node: ClusterNode) -> Subscriber:
        reader = self._readers.get(node.name)
        if reader is None:

            def connect() -> AbstractConnection:
                kwargs = {
                    **node.connection_kwargs,
                    "client_name": f"{self._keys.prefix}:subscriber",
                }
                return node.connection_class(**kwargs)

            reader = Subscriber(
                connect,
                self._keys,
                self._catch_up,
                sharded=True,
                on_moved=self._moved.set,
                delivered=self._delivered,
                echoes=self._echoes,
            )
            assert self._handler is not None, "subscriber not started"
            reader.start(self._handler)
            self._readers[node.name] = reader
        return reader

    async def _watch(self) -> None:
        """Connect a reader to each shard at once; then re-home sessions when a shard
        says a slot moved, or while a reader is down."""
        loop = asyncio.get_running_loop()
        refreshed = loop.time()
        while True:
            if not self._readers:
                try:
                    async with self._lock:
                        await self._ready()
                except Exception as exc:
                    log.warning("the Redis Cluster is not answering yet: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._moved.wait(), WATCH_EVERY)
            moved = self._moved.is_set() or self._misplaced()
            down = any(not r.connected and r.sessions for r in self._readers.values())
            stale = loop.time() - refreshed > REFRESH_EVERY
            if not (moved or down or stale):
                continue
            self._moved.clear()
            refreshed = loop.time()
            try:
                await self._rehome()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("the Redis Cluster's slot map could not be read: %s", exc)

    def _misplaced(self) -> bool:
        """The client's slot map (patched by the MOVED replies its commands met) puts a
        session on another shard than its reader's."""
        try:
            return any(self._owner(sid).name != name for sid, name in self._home.items())
        except Exception:  # a slot not covered: the refresh tells
            return True

    async def _rehome(self) -> None:
        async with self._lock:
            await self._cluster.nodes_manager.initialize()
            await self._ready()
            moves = []
            for session_id, name in list(self._home.items()):
                node = self._owner(session_id)
                if node.name != name:
                    self._readers[name].forget(session_id)
                    self._home[session_id] = node.name
                    moves.append((session_id, self._reader(node)))
            primaries = {node.name for node in self._cluster.get_primaries()}
            for name, reader in list(self._readers.items()):
                if name not in primaries and not reader.sessions:
                    del self._readers[name]
                    await reader.close()
        for session_id, reader in moves:
            log.warning("session %s moved to another Redis shard", session_id)
            await reader.subscribe(session_id, catch_up=True)
