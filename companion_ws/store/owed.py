"""The owed broadcasts on the driver (docs/protocol.md section 4, "what was promised is
delivered"): what a committed effect still owes the screens.

A service whose effect commits and then publishes (a tool run, the post-call webhook, a
backend publish) writes the frames it will publish as ``owed_events`` rows *in the
effect's own transaction* (:meth:`companion_ws.store.effects.EffectStore.commit`), then
publishes them and deletes them (:meth:`OwedStore.settle`). A process that dies in
between leaves them behind, and whoever finds them later (a retry of the same id, or any
process's sweep) takes them over with a compare-and-set of ``claimed_at`` and publishes
what is still owed (``companion_ws.hub.owed``).

``claimed_at`` and ``created_at`` are wall-clock milliseconds: they are compared across
processes (docs/protocol.md section 4, "which clock").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from companion_ws.store.held import Block, HeldConnection, Statement

__all__ = ["OwedFrame", "OwedStore"]


@dataclass(frozen=True, slots=True)
class OwedFrame:
    """One broadcast owed by ``owner`` (the effect's key), ``ordinal``-th of its frames."""

    owner: str
    ordinal: int
    session_id: str
    kind: str
    body: str  # the encoded frame, before the broker gives it a seq
    after_seq: int  # a seq the owed frames are known to come after (for the check)
    created_at: int
    claimed_at: int


_INSERT = Statement(
    "INSERT INTO owed_events"
    " (owner, ordinal, session_id, kind, body, after_seq, created_at, claimed_at)"
    " VALUES (:owner, :ordinal, :sid, :kind, :body, :after_seq, :created_at, :claimed_at)"
)
_COLUMNS = "owner, ordinal, session_id, kind, body, after_seq, created_at, claimed_at"
_OF = Statement(f"SELECT {_COLUMNS} FROM owed_events WHERE owner = :owner ORDER BY ordinal")
#: Owners a sweep may take over: not a backend publish's (``publish:...``), which only
#: its own redelivery takes over, as it settles with its receipt (hub/idempotent.py).
_STALE = Statement(
    "SELECT DISTINCT owner, created_at FROM owed_events WHERE claimed_at < :before"
    " AND owner NOT LIKE 'publish:%' ORDER BY created_at LIMIT :limit"
)
_TAKE = Statement(
    "UPDATE owed_events SET claimed_at = :now WHERE owner = :owner AND claimed_at = :seen"
)
_SETTLE = Statement("DELETE FROM owed_events WHERE owner = :owner")


async def settle_in(block: Block, owner: str) -> None:
    """Delete ``owner``'s frames in the caller's transaction."""
    await block.write(_SETTLE, owner=owner)


async def insert(block: Block, frames: Sequence[OwedFrame]) -> None:
    """Write ``frames`` in the caller's transaction."""
    await block.write_many(
        _INSERT,
        [
            {
                "owner": o.owner,
                "ordinal": o.ordinal,
                "sid": o.session_id,
                "kind": o.kind,
                "body": o.body,
                "after_seq": o.after_seq,
                "created_at": o.created_at,
                "claimed_at": o.claimed_at,
            }
            for o in frames
        ],
    )


class OwedStore:
    def __init__(self, held: HeldConnection) -> None:
        self._held = held

    async def of(self, owner: str) -> list[OwedFrame]:
        """What ``owner`` still owes, in order (empty: nothing)."""
        async with self._held.block() as block:
            rows = await block.rows(_OF, owner=owner)
        return [_frame(row) for row in rows]

    async def stale(self, before: int, limit: int = 100) -> list[str]:
        """Owners whose claim is older than ``before``, oldest first."""
        async with self._held.block() as block:
            rows = await block.rows(_STALE, before=before, limit=limit)
        return [str(row[0]) for row in rows]

    async def take(self, owner: str, seen: int, now: int) -> bool:
        """Claim ``owner``'s frames if their claim is still ``seen`` (nobody took them)."""
        async with self._held.block() as block, block.transaction():
            return await block.write(_TAKE, owner=owner, seen=seen, now=now) > 0

    async def settle(self, owner: str) -> None:
        """``owner``'s frames are published: they are owed no more."""
        await self.settle_many([owner])

    async def settle_many(self, owners: Sequence[str]) -> None:
        """As :meth:`settle`, for many owners in one commit."""
        async with self._held.block() as block, block.transaction():
            await block.write_many(_SETTLE, [{"owner": owner} for owner in owners])


def _frame(row: tuple[object, ...]) -> OwedFrame:
    owner, ordinal, sid, kind, body, after_seq, created_at, claimed_at = row
    return OwedFrame(
        str(owner),
        int(ordinal),  # type: ignore[call-overload]
        str(sid),
        str(kind),
        str(body),
        int(after_seq),  # type: ignore[call-overload]
        int(created_at),  # type: ignore[call-overload]
        int(claimed_at),  # type: ignore[call-overload]
    )
