"""A session's stream on Redis: its counter, its epoch and its capped history (the meta
and stream keys), read and written by Lua scripts that seed the keys first when they are
missing.

``publish`` is one script: increment the counter, splice the seq into the frame, append
it to the stream, publish it on the session's channel, refresh the TTLs. It answers the
spliced frame, so the publisher's event carries the very bytes the clients get and the
seq is spliced once, in Redis.

When a session's keys are gone (expired, or Redis restarted without persistence) the
next use seeds them from the database (the ``seed`` loader) with a new epoch: seq goes
on after the last persisted event, and a client holding a number from the lost history
is told to resync instead of being replayed something else under the same name.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from redis.commands.core import AsyncScript

from companion_ws.broker.base import SeedLoader
from companion_ws.broker.redis.keys import Client, Keys, text
from companion_ws.broker.redis.scripts import source
from companion_ws.values import Event, HistorySlice, Position, Seed, new_epoch

log = logging.getLogger("companion_ws.broker.redis")


class Streams:
    def __init__(
        self, redis: Client, keys: Keys, *, size: int, ttl_ms: int, sharded: bool = False
    ) -> None:
        self._keys = keys
        self._publish_cmd = "SPUBLISH" if sharded else "PUBLISH"
        self._size = size
        self._ttl_ms = ttl_ms
        self._publish = redis.register_script(source("publish"))
        self._position = redis.register_script(source("position"))
        self._history = redis.register_script(source("history"))
        self._floor = redis.register_script(source("floor"))
        self._floor_swap = redis.register_script(source("floor_swap"))
        self._renumber = redis.register_script(source("renumber"))
        self._seed: SeedLoader | None = None
        self._last_delivered: Callable[[str], int] = lambda _: 0
        self._loading: dict[str, asyncio.Future[Seed]] = {}

    def start(self, seed: SeedLoader, last_delivered: Callable[[str], int]) -> None:
        """``seed`` says where a missing stream starts; ``last_delivered`` is the last seq
        this process handed over, which a new numbering must not go below."""
        self._seed = seed
        self._last_delivered = last_delivered

    async def publish(self, session_id: str, kind: str, body: bytes) -> Event:
        """Give ``body`` the session's next seq, keep it and publish it."""
        args = [body, kind, self._size, self._keys.channel(session_id), self._publish_cmd]
        result = await self._call(self._publish, session_id, args, seed=True)
        return Event(session_id, int(result[0]), text(result[1]), kind, result[2])

    async def swap_floor(
        self, session_id: str, expect: str | None, floor: str, kind: str, body: bytes
    ) -> Event | None:
        """Publish ``body`` and set the floor when it is ``expect`` (None: any), in one
        script; None when it was another."""
        compare = "0" if expect is None else "1"
        channel = self._keys.channel(session_id)
        args = [body, kind, self._size, channel, self._publish_cmd, compare, expect or "", floor]
        result = await self._call(self._floor_swap, session_id, args, seed=True)
        if int(result[0]) == 0:
            return None
        return Event(session_id, int(result[0]), text(result[1]), kind, result[2])

    async def floor(self, session_id: str) -> str:
        """The session's voice floor, ``""`` for none."""
        return text((await self._call(self._floor, session_id, [], seed=True))[0])

    async def position(self, session_id: str) -> Position:
        """The session's last seq and epoch."""
        result = await self._call(self._position, session_id, [], seed=True)
        return Position(int(result[0]), text(result[1]))

    async def history(self, session_id: str, after_seq: int, limit: int) -> HistorySlice:
        """Up to ``limit`` kept events after ``after_seq``, or unavailable."""
        result = await self._read(session_id, after_seq, limit, seed=True)
        assert result is not None
        position, first, events = result
        if after_seq > position.seq or after_seq + 1 < first:
            return HistorySlice((), position, False)
        return HistorySlice(events, position, True)

    async def since(self, session_id: str, last: Event | None, limit: int) -> list[Event]:
        """Up to ``limit`` events after ``last`` (the last one this process handed
        over), without seeding: none when the session's keys are missing (the
        subscriber's catch-up).

        A stream that went back (a failover to a replica that had not received the
        primary's last events: its counter is behind ``last``, or its event at that
        number is another one) would number new events again with numbers already
        handed out. It is renamed instead (a new epoch, numbering on after ``last``):
        clients that saw the lost events go on; the others resync, never a silent gap.
        """
        after = last.seq - 1 if last is not None and last.seq > 0 else 0
        result = await self._read(session_id, after, limit + 1, seed=False)
        if result is None:
            return []
        position, _, events = result
        if last is None:
            return events[:limit]
        if position.epoch == last.epoch and (
            position.seq < last.seq
            or any(e.seq == last.seq and e.payload != last.payload for e in events[:1])
        ):
            renamed = await self._renumber(
                keys=self._keys.stream(session_id),
                args=[last.epoch, new_epoch(), last.seq, self._ttl_ms],
            )
            if renamed:
                log.warning(
                    "the Redis stream of %s went back behind #%d (a failover?): "
                    "renamed, its clients resync",
                    session_id,
                    last.seq,
                )
            return []
        return [e for e in events if e.seq > last.seq][:limit]

    async def _read(
        self, session_id: str, after_seq: int, limit: int, *, seed: bool
    ) -> tuple[Position, int, list[Event]] | None:
        """The position, the first seq kept, and up to ``limit`` events after
        ``after_seq``; None when the keys are missing and ``seed`` is False."""
        args = [max(after_seq, 0), limit]
        result = await self._call(self._history, session_id, args, seed=seed)
        if not result:
            return None
        position = Position(int(result[0]), text(result[1]))
        first = _seq_of_id(result[2]) if result[2] else position.seq + 1
        events = [_event(session_id, position.epoch, entry) for entry in result[3]]
        return position, first, events

    async def _call(
        self, script: AsyncScript, session_id: str, args: list[Any], *, seed: bool
    ) -> Any:
        """Run a stream script (seed.lua + its lines). Its keys missing, it answers
        false; with ``seed``, a seed is loaded and the script runs again with it."""
        keys = self._keys.stream(session_id)
        result = await script(keys=keys, args=[0, "", self._ttl_ms, *args])
        if result or not seed:
            return result
        seq, epoch = await self._load_seed(session_id)
        return await script(keys=keys, args=[seq, epoch, self._ttl_ms, *args])

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
        return max(seed.seq, self._last_delivered(session_id)), new_epoch()


def _seq_of_id(entry_id: bytes | str) -> int:
    return int(text(entry_id).split("-", 1)[0])


def _event(session_id: str, epoch: str, entry: Sequence[Any]) -> Event:
    entry_id, raw = entry
    fields = dict(zip(raw[::2], raw[1::2], strict=True))
    return Event(session_id, _seq_of_id(entry_id), epoch, text(fields[b"k"]), fields[b"p"])
