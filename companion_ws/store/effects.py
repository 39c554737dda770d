"""A tool run's database work on the driver: the ledger row of its id, the session's
state, and the one commit of both.

Every tool call reads the ledger and the state, then commits its state change with its
ledger row (:mod:`companion_ws.hub.toolrunner`); every state patch reads and
compare-and-sets the state (:mod:`companion_ws.hub.state`). Through units of work that
was four ORM round trips and most of a tool call's CPU time (``bench/README.md``); here
it is SQL on the driver, one statement per step.

On SQLite the statements run on the store's held connection, the hot paths' one writer
(:mod:`companion_ws.store.held`): a tool's commit never waits on the event log's in
SQLite's busy handler. On PostgreSQL each block takes a connection of the engine's pool,
so tool runs of different sessions commit side by side.

One compare-and-set of the state stays in a unit of work: ending a session abandons its
active tasks in the same commit as the end (``hub/directory.py``,
``SessionRepository.save_state``: the same columns, through the ORM), a rare path that
reads and writes more than these statements do.
"""

from __future__ import annotations

import enum
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError

from companion_ws.store import owed as owed_rows
from companion_ws.store.held import Block, HeldConnection, Statement
from companion_ws.store.owed import OwedFrame

__all__ = ["EffectStore", "LedgerRow", "Recorded", "StateRow", "StateWrite", "Verdict"]


@dataclass(frozen=True, slots=True)
class Recorded:
    """A ledger row: what an id's effect answered, in which session."""

    session_id: str
    result: str
    is_error: bool
    created_at: int


@dataclass(frozen=True, slots=True)
class StateRow:
    """A session's state document (JSON text) and its version, as committed."""

    state: str
    version: int
    last_seq: int = 0  # the session's last_seq column: at or below its newest event's seq


@dataclass(frozen=True, slots=True)
class LedgerRow:
    key: str
    session_id: str
    name: str
    result: str
    is_error: bool
    created_at: int


@dataclass(frozen=True, slots=True)
class StateWrite:
    """Compare-and-set: the state at ``from_version`` becomes ``state`` at ``version``."""

    from_version: int
    state: str
    version: int
    now: int
    expires_at: int


class Verdict(enum.Enum):
    COMMITTED = "committed"
    CONFLICT = "conflict"  # the state was no longer at ``from_version``: nothing written
    DUPLICATE = "duplicate"  # the ledger already had the key: nothing written


_LEDGER_GET = Statement(
    "SELECT session_id, result, is_error, created_at FROM tool_calls WHERE tool_call_id = :key"
)
_STATE_GET = Statement("SELECT state, state_version, last_seq FROM sessions WHERE id = :sid")
_STATE_CAS = Statement(
    "UPDATE sessions SET state = :state, state_version = :version,"
    " last_activity_at = :now, expires_at = :expires_at"
    " WHERE id = :sid AND state_version = :from_version"
)
_LEDGER_ADD = Statement(
    "INSERT INTO tool_calls (tool_call_id, session_id, tool_name, result, is_error, created_at)"
    " VALUES (:key, :sid, :name, :result, :is_error, :created_at)"
)
_LEDGER_BACKDATE = Statement("UPDATE tool_calls SET created_at = 0 WHERE tool_call_id = :key")


class EffectStore:
    def __init__(self, held: HeldConnection) -> None:
        if not held.supported:
            raise ValueError(f"no driver path for the {held.dialect!r} database")
        self._held = held

    async def read(
        self, session_id: str, key: str | None = None
    ) -> tuple[Recorded | None, StateRow | None]:
        """The ledger row of ``key`` (when given) and the session's state, as committed."""
        async with self._held.block() as block:
            recorded = await _recorded(block, key) if key is not None else None
            found = await block.row(_STATE_GET, sid=session_id)
        return recorded, (
            StateRow(found[0], int(found[1]), int(found[2])) if found is not None else None
        )

    async def recorded(self, key: str) -> Recorded | None:
        """The ledger row of ``key``, if any."""
        async with self._held.block() as block:
            return await _recorded(block, key)

    async def commit(
        self,
        session_id: str,
        *,
        state: StateWrite | None = None,
        ledger: LedgerRow | None = None,
        owed: Sequence[OwedFrame] = (),
        settle: str | None = None,
    ) -> Verdict:
        """Compare-and-set the state, insert the ledger row and the broadcasts the effect
        owes (:mod:`companion_ws.store.owed`), delete those ``settle`` owed: all or
        nothing."""
        async with self._held.block() as block, block.transaction() as tx:
            if state is not None:
                changed = await block.write(
                    _STATE_CAS,
                    state=state.state,
                    version=state.version,
                    now=state.now,
                    expires_at=state.expires_at,
                    sid=session_id,
                    from_version=state.from_version,
                )
                if changed != 1:
                    tx.rollback = True
                    return Verdict.CONFLICT
            if ledger is not None:
                try:
                    await block.write(
                        _LEDGER_ADD,
                        key=ledger.key,
                        sid=ledger.session_id,
                        name=ledger.name,
                        result=ledger.result,
                        is_error=ledger.is_error,
                        created_at=ledger.created_at,
                    )
                except _DUPLICATE:
                    tx.rollback = True
                    return Verdict.DUPLICATE
            if owed:
                await owed_rows.insert(block, owed)
            if settle is not None:
                await owed_rows.settle_in(block, settle)
        return Verdict.COMMITTED

    async def backdate(self, key: str) -> None:
        """Make the ledger row of ``key`` as old as can be (a claim anyone may take over)."""
        async with self._held.block() as block, block.transaction():
            await block.write(_LEDGER_BACKDATE, key=key)


async def _recorded(block: Block, key: str) -> Recorded | None:
    found = await block.row(_LEDGER_GET, key=key)
    return Recorded(found[0], found[1], bool(found[2]), int(found[3])) if found else None


def _duplicate_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [sqlite3.IntegrityError, IntegrityError]
    try:
        import asyncpg

        errors.append(asyncpg.UniqueViolationError)
    except ImportError:  # pragma: no cover (asyncpg is a dependency)
        pass
    return tuple(errors)


_DUPLICATE = _duplicate_errors()
