"""Presence on Redis: per session, a hash of connection_id -> info and a zset of
connection_id -> expiry on the Redis clock.

Every process renews its own entries every presence_ttl/3 (the heartbeat). A process
that stops (SIGKILL, a lost host) stops renewing: its entries drop out of ``members``
once they expire, and the next heartbeat of a process with clients in the session reaps
them, atomically, so each is reported once. The reaper does not announce anything
itself: it hands each reaped entry to the node as a ``Leave`` fact.

A process that stalls past the TTL (a GC pause, SIGSTOP, a VM migration) finds on its
next heartbeat that some of its own entries were reaped, i.e. announced gone, by
another process (the reaper remembers each in the ``gone`` zset). The heartbeat never
re-adds such an entry silently: each is handed to the node as a ``Leave`` with ``mine=True``,
and the node closes that connection (docs/protocol.md section 4, *presence tells the
truth*), so presence and the open connections agree again. An entry missing without
having been reaped (Redis lost its keys, so nobody announced it gone) is re-added.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

from redis.asyncio.cluster import RedisCluster

from companion_ws.broker.base import LeaveHandler
from companion_ws.broker.redis.keys import Client, Keys, text
from companion_ws.broker.redis.scripts import source
from companion_ws.values import Leave

log = logging.getLogger("companion_ws.broker.redis")

REAP_BATCH = 100
GONE_MS = 600_000
TOUCH, REAP = source("presence_touch"), source("presence_reap")  # their text, for EVAL


class RedisPresence:
    def __init__(self, redis: Client, keys: Keys, *, ttl: float) -> None:
        self._redis = redis
        self._keys = keys
        self._ttl = ttl
        self._ttl_ms = max(1, int(ttl * 1000))
        # how long a reaped entry is remembered, for its process to learn it was
        # announced gone: far longer than any stall a client's keepalive lets pass
        self._gone_ms = max(3 * self._ttl_ms, GONE_MS)
        self._touch = redis.register_script(source("presence_touch"))
        self._list = redis.register_script(source("presence_list"))
        self._reap = redis.register_script(source("presence_reap"))
        # this process's connections, for the heartbeat: session -> connection -> info
        self._local: dict[str, dict[str, str]] = {}
        self._on_leave: LeaveHandler | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def start(self, on_leave: LeaveHandler) -> None:
        """Start the heartbeat; each entry it reaps is handed to ``on_leave``."""
        self._on_leave = on_leave
        self._task = asyncio.create_task(self._heartbeat(), name="redis-presence")

    async def close(self) -> None:
        """Stop the heartbeat; this process's entries go now instead of after expiry."""
        self._closing = True
        if self._task is not None:
            self._task.cancel()
            await asyncio.wait([self._task], timeout=3.0)
            self._task = None
        with contextlib.suppress(Exception):
            await self._drop()

    async def add(self, session_id: str, connection_id: str, info: dict[str, Any]) -> None:
        """Announce a local connection of the session (renewed while this process lives)."""
        text = json.dumps(info, separators=(",", ":"))
        await self._touch(
            keys=self._keys.presence(session_id),
            args=self._touch_args({connection_id: text}, add=True),
        )
        # renewed by the heartbeat only once it is in Redis: a renewal overtaking the
        # add would find it missing and take it for reaped
        self._local.setdefault(session_id, {})[connection_id] = text

    async def remove(self, session_id: str, connection_id: str) -> None:
        """Withdraw a local connection; removing one that is not there is fine."""
        members = self._local.get(session_id)
        if members is not None:
            members.pop(connection_id, None)
            if not members:
                del self._local[session_id]
        presence, alive, _ = self._keys.presence(session_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.hdel(presence, connection_id)
            pipe.zrem(alive, connection_id)
            await pipe.execute()

    async def members(self, session_id: str) -> list[dict[str, Any]]:
        """Every process's live connections to the session; entries whose process
        stopped renewing them are left out."""
        rows = await self._list(keys=self._keys.presence(session_id))
        return [json.loads(row) for row in rows]

    async def renew(self) -> None:
        """One heartbeat: renew this process's entries and reap the expired entries of
        the sessions it has clients in, handing each to ``on_leave``; this process's own
        entries that another process reaped meanwhile go to ``on_leave`` too, as
        ``mine``."""
        sessions = [(sid, dict(members)) for sid, members in self._local.items()]
        if not sessions:
            return
        results = await self._renew_all(sessions)
        for sid, members in sessions:  # left while the renewal was on its way: not back
            for connection_id in members:
                if connection_id not in self._local.get(sid, {}):
                    await self.remove(sid, connection_id)
        leaves: list[Leave] = []
        for (sid, members), lost, dead in zip(sessions, results[0::2], results[1::2], strict=True):
            for raw in lost:
                connection_id = text(raw)
                if connection_id in self._local.get(sid, {}):  # still open here
                    del self._local[sid][connection_id]
                    if not self._local[sid]:
                        del self._local[sid]
                    leaves.append(Leave(sid, json.loads(members[connection_id]), mine=True))
            leaves += [Leave(sid, json.loads(row)) for row in dead]
        assert self._on_leave is not None, "presence not started"
        for leave in leaves:
            try:
                self._on_leave(leave)
            except Exception:
                log.exception("the leave handler failed on %s", leave)

    async def _renew_all(self, sessions: list[tuple[str, dict[str, str]]]) -> list[Any]:
        """Touch then reap each session, in one pipeline. A cluster's pipeline does not
        reload a script a restarted shard lost (NOSCRIPT), so there it sends the
        scripts' text (EVAL) rather than their digest."""
        if isinstance(self._redis, RedisCluster):
            async with self._redis.pipeline() as cluster_pipe:
                for sid, members in sessions:
                    keys = self._keys.presence(sid)
                    touch = self._touch_args(members, add=False)
                    cluster_pipe.eval(TOUCH, len(keys), *keys, *touch)
                    cluster_pipe.eval(REAP, len(keys), *keys, REAP_BATCH, self._gone_ms)
                return list(await cluster_pipe.execute())
        async with self._redis.pipeline(transaction=False) as pipe:
            for sid, members in sessions:
                keys = self._keys.presence(sid)
                await self._touch(keys=keys, args=self._touch_args(members, add=False), client=pipe)
                await self._reap(keys=keys, args=[REAP_BATCH, self._gone_ms], client=pipe)
            return list(await pipe.execute())

    def _touch_args(self, members: dict[str, str], *, add: bool) -> list[Any]:
        args: list[Any] = [self._ttl_ms, self._ttl_ms * 3, "1" if add else "0"]
        for connection_id, info in members.items():
            args += [connection_id, info]
        return args

    async def _heartbeat(self) -> None:
        while not self._closing:
            await asyncio.sleep(self._ttl / 3)
            try:
                await self.renew()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("the presence heartbeat failed: %s", exc)

    async def _drop(self) -> None:
        if not self._local:
            return
        async with self._redis.pipeline(transaction=False) as pipe:
            for sid, members in self._local.items():
                presence, alive, _ = self._keys.presence(sid)
                pipe.hdel(presence, *members)
                pipe.zrem(alive, *members)
            await pipe.execute()
        self._local.clear()
