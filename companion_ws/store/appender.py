"""The event log's writes: a batch of events, and the sessions' bookkeeping (``last_seq``,
last activity and expiry), in one commit on the store's held connection
(:mod:`companion_ws.store.held`) with the driver's own ``executemany``.

Every broadcast event is committed before anyone sees it, so the cost of a commit is
paid by every publish the group commit cannot batch (a quiet session's events, one
at a time): about 400 µs of CPU per commit on SQLite through a unit of work, against
65 µs for the same insert and commit on the driver (``bench/README.md``). The
bookkeeping of a hundred busy sessions, written once an interval, cost 12% of the hub's
CPU at 16,000 deliveries/s through SQLAlchemy's ``executemany`` (its parameters are
processed per row in Python). A failed write goes up to the event log, which fails the
batch's waiters.
"""

from __future__ import annotations

from collections.abc import Sequence

from companion_ws.store.held import HeldConnection, Statement
from companion_ws.store.repositories import NewEvent

__all__ = ["EventAppender"]

_EVENTS = Statement(
    "INSERT INTO events (session_id, seq, epoch, type, payload, created_at)"
    " VALUES (:sid, :seq, :epoch, :type, :payload, :created_at)"
    " ON CONFLICT (session_id, seq) DO NOTHING"
)
_LAST_SEQ = Statement("UPDATE sessions SET last_seq = :seq WHERE id = :sid AND last_seq < :seq")
_ACTIVITY = Statement(
    "UPDATE sessions SET last_activity_at = :at, expires_at = :expires"
    " WHERE id = :sid AND last_activity_at < :at"
)


class EventAppender:
    def __init__(self, held: HeldConnection) -> None:
        self._held = held

    async def append(
        self,
        events: Sequence[NewEvent],
        *,
        seqs: dict[str, int] | None = None,
        activity: dict[str, int] | None = None,
        ttl_ms: int = 0,
    ) -> None:
        """Insert ``events`` (a row already there, written by another process, is
        skipped), advance the sessions' ``last_seq`` to ``seqs`` and their last activity
        to ``activity`` (expiring ``ttl_ms`` later), and commit."""
        async with self._held.use() as block, block.transaction():
            await block.write_many(
                _EVENTS,
                [
                    {
                        "sid": e.session_id,
                        "seq": e.seq,
                        "epoch": e.epoch,
                        "type": e.type,
                        "payload": e.payload,
                        "created_at": e.created_at,
                    }
                    for e in events
                ],
            )
            await block.write_many(
                _LAST_SEQ, [{"sid": sid, "seq": seq} for sid, seq in (seqs or {}).items()]
            )
            await block.write_many(
                _ACTIVITY,
                [
                    {"sid": sid, "at": at, "expires": at + ttl_ms}
                    for sid, at in (activity or {}).items()
                ],
            )
