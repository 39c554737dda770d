"""The names of a session's keys and channel, under one hash tag so that a Redis Cluster
keeps them on one shard (the channel too: sharded pub/sub on a cluster)::

    {prefix}:{sid}:meta      hash    seq, epoch: the counter and the name of its history
    {prefix}:{sid}:stream    stream  id "<seq>-0", fields k (kind), p (payload); capped
    {prefix}:{sid}:presence  hash    connection_id -> info (JSON)
    {prefix}:{sid}:alive     zset    connection_id -> expiry (ms, Redis clock)
    {prefix}:{sid}:gone      zset    connection_id -> when it was reaped (announced gone)
    {prefix}:{sid}           channel "<seq> <epoch> <kind> <payload>"
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeAlias

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

#: one Redis, or a Redis Cluster (the session's keys on one slot either way)
Client: TypeAlias = aioredis.Redis | RedisCluster


@dataclass(frozen=True, slots=True)
class Keys:
    prefix: str

    def stream(self, session_id: str) -> list[str]:
        """KEYS of the stream scripts: meta, stream."""
        return [self._key(session_id, "meta"), self._key(session_id, "stream")]

    def presence(self, session_id: str) -> list[str]:
        """KEYS of the presence scripts: presence, alive, gone."""
        return [
            self._key(session_id, "presence"),
            self._key(session_id, "alive"),
            self._key(session_id, "gone"),
        ]

    def channel(self, session_id: str) -> bytes:
        return f"{self.prefix}:{{{session_id}}}".encode()

    def _key(self, session_id: str, name: str) -> str:
        return f"{self.prefix}:{{{session_id}}}:{name}"


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
