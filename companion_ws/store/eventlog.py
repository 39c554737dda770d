"""The session log in the database: every event, in batches, by group commit.

Two ways in:

- ``write`` (durable before visible, the embedded broker): the event joins the next
  batch and the caller gets a future. The writer commits the batch, then, in seq
  order, makes each event visible (the broker's callback hands it to the clients) and
  resolves its future. Events that arrive while a commit is in flight ride the next
  one, so a busy session costs one commit per batch, not per event. If the commit
  fails, every event waiting to be written fails with it (its ``rollback`` callback
  runs, so the broker can reuse the numbers nobody saw) and the caller gets a
  retryable ``internal`` error: nothing acknowledged is ever dropped.
- ``append`` (a broker whose own stream is the durability, Redis): queued and written
  off the hot path. Every process logs what it publishes and what it receives, and a
  row that another process wrote first is skipped.

The backlog is bounded: past ``max_backlog`` queued events, ``write`` refuses at once.

``stop`` never cancels the writer: it asks it to finish the batch in hand, then writes
the rest. A statement cancelled half-way can leave the SQLite driver waiting forever
(see :mod:`companion_ws.store.uow`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from companion_ws.protocol.codec import now_ms
from companion_ws.protocol.errors import Internal
from companion_ws.store.appender import EventAppender
from companion_ws.store.repositories import NewEvent
from companion_ws.store.store import Store
from companion_ws.values import Event

log = logging.getLogger("companion_ws.eventlog")

__all__ = ["EventLog"]

Key = tuple[str, int]


@dataclass(slots=True)
class _Waiter:
    event: Event
    done: asyncio.Future[None]
    visible: Callable[[Event], None]
    rollback: Callable[[Event], None]


class EventLog:
    def __init__(
        self,
        store: Store,
        *,
        interval: float,
        batch: int,
        ttl_ms: int,
        max_backlog: int = 20_000,
        linger: float = 0.002,
    ) -> None:
        self._store = store
        self._appender = EventAppender(store.held)
        self._linger = linger
        self._touched = 0.0  # when sessions' activity was last written
        self._spread = 0  # sessions in the last batch: a sign of concurrent publishers
        self._max_backlog = max_backlog
        self._waiters: dict[Key, _Waiter] = {}
        self._interval = interval
        self._batch = batch
        self._ttl_ms = ttl_ms
        # Keyed by (session, seq): an event this process published and also received
        # from the broker is written once.
        self._queue: dict[tuple[str, int], NewEvent] = {}
        self._activity: dict[str, int] = {}
        self._seqs: dict[str, int] = {}  # sessions' last_seq, not yet written
        self._lock = asyncio.Lock()
        self._wake = asyncio.Event()
        self._stopping = False
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="eventlog")

    async def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            await self._task
            self._task = None
        await self.flush()

    def write(
        self,
        event: Event,
        *,
        visible: Callable[[Event], None],
        rollback: Callable[[Event], None],
    ) -> asyncio.Future[None]:
        """Queue ``event`` for the next commit; after it, ``visible(event)`` runs (in
        seq order) and the future resolves. Refused at once (``Internal``, retryable)
        while the backlog is full."""
        if len(self._queue) >= self._max_backlog:
            raise Internal("the database is not keeping up; retry")
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters[(event.session_id, event.seq)] = _Waiter(event, done, visible, rollback)
        self.append(event)
        self._wake.set()
        return done

    def append(self, event: Event) -> None:
        """Queue ``event`` for a background batch (no waiting, no visibility hook)."""
        key = (event.session_id, event.seq)
        if key in self._queue:
            return
        self._queue[key] = NewEvent(
            session_id=event.session_id,
            seq=event.seq,
            epoch=event.epoch,
            type=event.kind,
            payload=event.payload.decode(),
            created_at=now_ms(),
        )
        if len(self._queue) >= self._batch:
            self._wake.set()

    def touch(self, session_id: str, at: int | None = None) -> None:
        """Note activity on a session; written with the next batch."""
        self._activity[session_id] = at if at is not None else now_ms()

    @property
    def pending(self) -> int:
        return len(self._queue)

    async def _run(self) -> None:
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._interval)
            if self._waiters and self._spread > 1 and len(self._queue) < self._batch:
                # Many sessions publish at once: let the events of the next moment ride
                # the same commit (a commit costs far more than the wait). One session's
                # publisher alone would only wait longer: no linger then.
                await asyncio.sleep(self._linger)
            self._wake.clear()
            if self._stopping:
                return  # stop() writes what is left
            # Last activity is bookkeeping, not history: written once an interval, not in
            # every commit that makes events visible.
            touch = time.monotonic() - self._touched >= self._interval
            try:
                await self.flush(touch=touch)
                if touch:
                    self._touched = time.monotonic()
            except Exception as exc:
                log.warning("writing the event log failed (%s); retrying", exc)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), min(self._interval * 5, 2.0))

    async def flush(self, *, touch: bool = True) -> None:
        """Write everything queued; with ``touch``, the sessions' bookkeeping too (last
        activity and ``last_seq``: written once an interval, not in every commit)."""
        async with self._lock:
            while self._queue or (touch and (self._activity or self._seqs)):
                keys = list(itertools.islice(self._queue, self._batch))
                batch = [self._queue.pop(key) for key in keys]
                newest = dict(self._seqs)
                for event in batch:
                    newest[event.session_id] = max(event.seq, newest.get(event.session_id, 0))
                activity: dict[str, int] = {}
                seqs: dict[str, int] = {}
                if touch and not self._queue:
                    activity, self._activity = self._activity, {}
                    seqs = newest
                try:
                    await self._write(batch, activity, seqs)
                except BaseException:
                    self._queue = {**dict(zip(keys, batch, strict=True)), **self._queue}
                    for sid, at in activity.items():
                        self._activity[sid] = max(at, self._activity.get(sid, 0))
                    self._fail_waiters()
                    raise
                self._seqs = {} if seqs else newest
                self._spread = len({event.session_id for event in batch})
                self._release(keys)

    def _release(self, keys: list[Key]) -> None:
        """The batch is committed: make its events visible, in order."""
        if not self._waiters:
            return
        for key in keys:
            waiter = self._waiters.pop(key, None)
            if waiter is not None:
                waiter.visible(waiter.event)
                if not waiter.done.done():
                    waiter.done.set_result(None)

    def _fail_waiters(self) -> None:
        """A commit failed: every durable write still waiting fails, newest first (so
        the broker rolls each session back to its last committed seq), and leaves the
        queue: an event nobody saw must never be written later under a reused seq."""
        waiters, self._waiters = self._waiters, {}
        for key, waiter in reversed(list(waiters.items())):
            self._queue.pop(key, None)
            waiter.rollback(waiter.event)
            if not waiter.done.done():
                waiter.done.set_exception(Internal("the database is unavailable; retry"))
                waiter.done.exception()  # retrieved: the caller may have gone

    async def _write(
        self, batch: list[NewEvent], activity: dict[str, int], seqs: dict[str, int]
    ) -> None:
        await self._appender.append(batch, seqs=seqs, activity=activity, ttl_ms=self._ttl_ms)
