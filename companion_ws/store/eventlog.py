"""The long history, written in batches off the broadcast's hot path.

``append`` only queues (no I/O); a background task writes each batch of events, the
sessions' new ``last_seq`` and their last activity in one transaction. Every process
logs what it publishes and what it receives from the broker, and a row that another
process wrote first is skipped, so the log keeps the events of a process that died
before its batch was written, as long as another process had clients of the session.
``flush`` writes everything queued so far (shutdown, and readers that need the log).

``stop`` never cancels the writer: it asks it to finish the batch in hand, then writes
the rest. A statement cancelled half-way can leave the SQLite driver waiting forever
(see :mod:`companion_ws.store.uow`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging

from companion_ws.broker.base import Event
from companion_ws.protocol.codec import now_ms
from companion_ws.store.repositories import NewEvent
from companion_ws.store.store import Store

log = logging.getLogger("companion_ws.eventlog")


class EventLog:
    def __init__(self, store: Store, *, interval: float, batch: int, ttl_ms: int) -> None:
        self._store = store
        self._interval = interval
        self._batch = batch
        self._ttl_ms = ttl_ms
        # Keyed by (session, seq): an event this process published and also received
        # from the broker is written once.
        self._queue: dict[tuple[str, int], NewEvent] = {}
        self._activity: dict[str, int] = {}
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

    def append(self, event: Event) -> None:
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
            self._wake.clear()
            if self._stopping:
                return  # stop() writes what is left
            try:
                await self.flush()
            except Exception:
                log.exception("writing the event log failed; retrying")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), min(self._interval * 5, 2.0))

    async def flush(self) -> None:
        async with self._lock:
            while self._queue or self._activity:
                keys = list(itertools.islice(self._queue, self._batch))
                batch = [self._queue.pop(key) for key in keys]
                activity, self._activity = self._activity, {}
                try:
                    await self._write(batch, activity)
                except BaseException:
                    self._queue = {**dict(zip(keys, batch, strict=True)), **self._queue}
                    for sid, at in activity.items():
                        self._activity[sid] = max(at, self._activity.get(sid, 0))
                    raise

    async def _write(self, batch: list[NewEvent], activity: dict[str, int]) -> None:
        last: dict[str, int] = {}
        for event in batch:
            last[event.session_id] = max(event.seq, last.get(event.session_id, 0))
        async with self._store.uow() as uow:
            await uow.events.add_new(batch)
            await uow.sessions.advance_seqs(last)
            await uow.sessions.touch_many(activity, ttl_ms=self._ttl_ms)
            await uow.commit()
