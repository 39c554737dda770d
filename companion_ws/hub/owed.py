"""What was promised is delivered (docs/protocol.md section 4): the broadcasts a committed
effect owes the screens are part of the effect.

The mechanism, for every path where a commit is followed by a publish (a tool run, the
post-call webhook, a backend publish of the bus or gRPC):

1. The frames are sealed before the commit and written as ``owed_events`` rows in the
   effect's own transaction (:meth:`Owed.rows` -> ``EffectStore.commit(owed=...)``), the
   rows claimed by the committing process.
2. That process publishes them in order and deletes them (:meth:`Owed.deliver`).
3. If it dies in between, the rows stay. A retry of the same key (:meth:`Owed.redeem`)
   waits for the owner to finish, up to the lease, and otherwise takes the rows over;
   every process's sweep (:meth:`Owed.sweep`, at start and every ``lease`` seconds) takes
   over rows whose claim is older than the lease. Taking over is a compare-and-set of
   the claim, so one process does it.
4. Whoever takes rows over first reads the session's history from the rows'
   ``after_seq``: a frame already there (published before the crash, not yet deleted)
   is not published again; the rest are, in order. So each owed frame is published
   exactly once, in its effect's order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from companion_ws import failpoints
from companion_ws.hub.publisher import Publisher, Sealed
from companion_ws.protocol.codec import decode_json, encode, now_ms
from companion_ws.protocol.errors import Internal
from companion_ws.protocol.frames import History
from companion_ws.store.owed import OwedFrame
from companion_ws.store.store import Store
from companion_ws.values import Event, Position

__all__ = ["Owed"]

log = logging.getLogger("companion_ws.owed")

_POLL = 0.05  # how often a retry looks whether the owner has published
_TICKS = 4  # settled owners are deleted every lease / _TICKS; stale ones swept every lease

#: A session's events after a seq, at most a limit (``Recovery.history``).
HistoryReader = Callable[[str, int, int], Awaitable[History]]


class Owed:
    def __init__(
        self, store: Store, publisher: Publisher, history: HistoryReader, *, lease: float
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._history = history
        self._lease = lease
        self._lease_ms = int(lease * 1000)
        self._settled: list[str] = []  # published, to delete with the next tick
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    @staticmethod
    def rows(owner: str, frames: Sequence[Sealed], after_seq: int) -> list[OwedFrame]:
        """The rows of ``frames``, owed by ``owner``, for its commit. [pure but the clock]"""
        now = now_ms()
        return [
            OwedFrame(owner, i, s.session_id, s.kind, s.body.decode(), after_seq, now, now)
            for i, s in enumerate(frames)
        ]

    async def deliver(
        self, owner: str, frames: Sequence[Sealed], *, lazy: bool = False
    ) -> tuple[Event, ...]:
        """Publish what ``owner``'s commit owes, then settle it: at once, or with
        ``lazy`` by the next tick's one delete of every settled owner (no commit of its
        own on a hot path). A failed publish raises and leaves the rows to a retry or a
        sweep; a failed settle only logs (whoever takes the rows over finds them
        published)."""
        events = await self._publisher.publish_all(frames)
        failpoints.hit("after_publish")
        if lazy:
            self._settled.append(owner)
            return events
        try:
            await self._store.owed.settle(owner)
        except Exception as exc:
            log.warning("settling the broadcasts of %s failed: %s", owner, exc)
        return events

    async def redeem(self, owner: str) -> None:
        """A retry of ``owner``: returns once nothing it owes is unpublished (its process
        published it, or we took it over after its lease)."""
        deadline = time.monotonic() + self._lease
        while rows := await self._store.owed.of(owner):
            stale = now_ms() - rows[0].claimed_at >= self._lease_ms
            if (stale or time.monotonic() >= deadline) and await self._take_over(owner, rows):
                return
            await asyncio.sleep(_POLL)

    async def sweep(self) -> int:
        """Take over and publish every owner's frames whose claim is past the lease."""
        before = now_ms() - self._lease_ms
        done = 0
        for owner in await self._store.owed.stale(before):
            rows = await self._store.owed.of(owner)
            if rows and rows[0].claimed_at < before and await self._take_over(owner, rows):
                done += 1
        return done

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="owed-sweep")

    async def stop(self) -> None:
        """Asked to finish, never cancelled (DB work: companion_ws.store.uow)."""
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _loop(self) -> None:
        tick = 0
        while not self._stopping.is_set():
            try:
                await self._settle_all()
                if tick % _TICKS == 0:
                    swept = await self.sweep()
                    if swept:
                        log.info("published the owed broadcasts of %d effects", swept)
            except Exception as exc:
                log.warning("the owed-broadcast sweep failed: %s", exc)
            tick += 1
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self._lease / _TICKS)
        with contextlib.suppress(Exception):
            await self._settle_all()

    async def _settle_all(self) -> None:
        if self._settled:
            owners, self._settled = self._settled, []
            try:
                await self._store.owed.settle_many(owners)
            except Exception:
                self._settled = owners + self._settled
                raise

    async def recover(self, owner: str) -> list[Position] | None:
        """For a path that settles ``owner`` itself (a backend publish, whose receipt
        commits with the settle): take its frames over now, publish what is missing and
        answer where each frame is, in order; None when nothing is owed."""
        rows = await self._store.owed.of(owner)
        if not rows:
            return None
        positions = await self._take_over(owner, rows, settle=False)
        if positions is None:
            raise Internal("another process is publishing this; retry")
        return positions

    async def _take_over(
        self, owner: str, rows: list[OwedFrame], *, settle: bool = True
    ) -> list[Position] | None:
        """Claim ``rows`` (None: another process did) and publish what is missing: where
        each frame is, in order."""
        if not await self._store.owed.take(owner, rows[0].claimed_at, now_ms()):
            return None
        sid = rows[0].session_id
        seen = await self._published(sid, min(row.after_seq for row in rows))
        found = [seen.get(encode(_said(row.body))) for row in rows]
        missing = [row for row, at in zip(rows, found, strict=True) if at is None]
        log.info("%s owed %d broadcasts, %d not yet published", owner, len(rows), len(missing))
        events = iter(
            await self._publisher.publish_all(
                [Sealed(row.session_id, row.kind, row.body.encode()) for row in missing]
            )
        )
        if settle:
            await self._store.owed.settle(owner)
        return [
            at if at is not None else Position((e := next(events)).seq, e.epoch) for at in found
        ]

    async def _published(self, session_id: str, after_seq: int) -> dict[bytes, Position]:
        """Every event of the session after ``after_seq`` (encoded without its seq, its
        keys sorted): where it is."""
        seen: dict[bytes, Position] = {}
        cursor = after_seq
        while True:
            page = await self._history(session_id, cursor, 256)
            for event in page.events:
                said = {k: v for k, v in event.items() if k != "seq"}
                seen.setdefault(encode(_sorted(said)), Position(event["seq"], page.epoch))
            if not page.has_more or page.next_after_seq <= cursor:
                return seen
            cursor = page.next_after_seq


def _sorted(said: dict[str, Any]) -> dict[str, Any]:
    return {k: said[k] for k in sorted(said)}


def _said(body: str) -> dict[str, Any]:
    said: dict[str, Any] = decode_json(body)
    return _sorted(said)
