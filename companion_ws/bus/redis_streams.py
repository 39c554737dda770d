"""Redis Streams: ``<prefix>:in`` read through the consumer group ``companion-hub``
(each hub process one consumer of it), ``<prefix>:dead`` and ``<prefix>:out``; every
entry has one field, ``data``. A message left pending by a process that died is claimed
by a live one after ``ack_wait`` (XAUTOCLAIM).

Nothing grows for ever: an inbound message is deleted once acknowledged (XACK, XDEL),
the dead letters are capped at ``dead_maxlen`` and the outbound stream at about
:data:`OUT_MAXLEN` entries."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from typing import Any

import redis.asyncio as aioredis
from redis.exceptions import ResponseError

from companion_ws.bus.base import BusConfig, Handler

__all__ = ["RedisStreamsBus"]

log = logging.getLogger("companion_ws.bus.redis")

OUT_MAXLEN = 100_000  # about this many outbound entries are kept
MARK_TTL = 86_400  # seconds a session's outbound high-water mark is kept

# Append an outbound event unless this seq (or a later one) of the session's epoch was
# appended already: several hubs may carry one session's events (Redis broker).
_OUT_ONCE = """
local mark = redis.call('GET', KEYS[2])
if mark then
  local sep = string.find(mark, ':', 1, true)
  local seq = tonumber(string.sub(mark, 1, sep - 1))
  if string.sub(mark, sep + 1) == ARGV[2] and seq >= tonumber(ARGV[1]) then
    return 0
  end
end
redis.call('SET', KEYS[2], ARGV[1] .. ':' .. ARGV[2], 'EX', ARGV[5])
redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[4], '*', 'data', ARGV[3])
return 1
"""


class RedisStreamsBus:
    def __init__(self, config: BusConfig) -> None:
        self._config = config
        p = config.prefix
        self._in, self._dead, self._out = f"{p}:in", f"{p}:dead", f"{p}:out"
        self._mark = f"{p}:out:mark:"
        self._group = config.consumer
        self._me = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        self._redis: aioredis.Redis = aioredis.Redis.from_url(config.url)
        self._out_once = self._redis.register_script(_OUT_ONCE)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    async def start(self, handler: Handler) -> None:
        try:
            await self._redis.xgroup_create(self._in, self._group, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._task = asyncio.create_task(self._consume(handler), name="bus-redis")

    async def _consume(self, handler: Handler) -> None:
        claimed_at = 0.0
        block_ms = int(min(1.0, self._config.ack_wait / 2) * 1000)
        while not self._stopping:
            try:
                now = time.monotonic()
                if now - claimed_at >= self._config.ack_wait / 2:
                    claimed_at = now
                    await self._claim_stale(handler)
                reply: Any = await self._redis.xreadgroup(
                    self._group,
                    self._me,
                    {self._in: ">"},
                    count=self._config.batch,
                    block=block_ms,
                )
                for _stream, entries in reply or ():
                    await self._handle(entries, handler)
            except Exception as exc:
                if self._stopping:
                    return
                log.warning("reading %s failed: %s", self._in, exc)
                await asyncio.sleep(0.5)

    async def _claim_stale(self, handler: Handler) -> None:
        """Messages another consumer (a dead process) took and never acknowledged."""
        min_idle = int(self._config.ack_wait * 1000)
        cursor: Any = "0-0"
        while True:
            reply: Any = await self._redis.xautoclaim(
                self._in, self._group, self._me, min_idle, cursor, count=self._config.batch
            )
            cursor, entries = reply[0], reply[1]
            if entries:
                await self._handle(entries, handler)
            if not entries or cursor in (b"0-0", "0-0"):
                return

    async def _handle(self, entries: list[Any], handler: Handler) -> None:
        async def one(entry_id: bytes, fields: dict[bytes, bytes] | None) -> None:
            data = (fields or {}).get(b"data")
            try:
                ok = await handler(data if data is not None else b"")
            except Exception:
                log.exception("handling a bus message failed; it will be redelivered")
                ok = False
            if ok:  # otherwise it stays pending and is claimed again after ack_wait
                async with self._redis.pipeline(transaction=True) as pipe:
                    pipe.xack(self._in, self._group, entry_id)
                    pipe.xdel(self._in, entry_id)
                    await pipe.execute()

        await asyncio.gather(*(one(eid, fields) for eid, fields in entries))

    async def close(self) -> None:
        self._stopping = True
        if self._task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._task, 5.0)
        with contextlib.suppress(Exception):  # a consumer holding messages stays
            mine = await self._redis.xpending_range(
                self._in, self._group, min="-", max="+", count=1, consumername=self._me
            )
            if not mine:
                await self._redis.xgroup_delconsumer(self._in, self._group, self._me)
        await self._redis.aclose()

    async def ping(self) -> bool:
        return bool(await self._redis.ping())

    async def dead(self, body: bytes) -> None:
        await self._redis.xadd(
            self._dead, {"data": body}, maxlen=self._config.dead_maxlen, approximate=False
        )

    async def out(self, session_id: str, seq: int, epoch: str, payload: bytes) -> None:
        await self._out_once(
            keys=[self._out, self._mark + session_id],
            args=[seq, epoch, payload, OUT_MAXLEN, MARK_TTL],
        )
