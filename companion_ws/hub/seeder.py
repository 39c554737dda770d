"""Where a session's stream starts in a fresh broker: after its last persisted event."""

from __future__ import annotations

from companion_ws.store.store import Store
from companion_ws.values import Event, Seed, new_epoch

__all__ = ["Seeder"]


class Seeder:
    """The broker's seed loader. With a journaled broker every event anyone saw is in
    the log, so the history (its epoch) always goes on. Otherwise the epoch survives
    only a clean shutdown; after a crash, events newer than the log may have been seen
    and lost, so the history gets a new epoch."""

    def __init__(self, store: Store, *, history_size: int, keep_epoch: bool) -> None:
        self._store = store
        self._history_size = history_size
        self._keep_epoch = keep_epoch
        self.seeded: set[str] = set()

    async def __call__(self, session_id: str) -> Seed:
        stored = await self._store.connects.seed(session_id, self._history_size)
        last = stored.last_seq
        if stored.epoch is None:
            return Seed(last, new_epoch())
        recent: list[Event] = []
        if stored.epoch_clean or self._keep_epoch:
            epoch = stored.epoch
            recent = [event for event in stored.recent if event.epoch == epoch]
            expected = last - len(recent) + 1
            if any(ev.seq != expected + i for i, ev in enumerate(recent)):
                recent = []
        else:
            epoch = new_epoch()
        if not self._keep_epoch:
            await self._store.connects.set_epoch(session_id, epoch, clean=False)
            self.seeded.add(session_id)
        return Seed(last, epoch, recent)

    async def mark_clean(self) -> None:
        """At a clean shutdown (the event log flushed): every seeded history survives."""
        async with self._store.uow() as uow:
            await uow.sessions.mark_clean(self.seeded)
            await uow.commit()
