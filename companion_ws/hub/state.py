"""The state service: a session's state document, changed only by compare-and-set
commits, each then broadcast as ``session_state_updated`` (owed by the commit, so a
crash between the two still broadcasts it once: :mod:`companion_ws.hub.owed`)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

from companion_ws import failpoints
from companion_ws.hub.locks import KeyedLock
from companion_ws.hub.owed import Owed
from companion_ws.hub.publisher import Publisher
from companion_ws.metrics import Metrics
from companion_ws.protocol import frames as f
from companion_ws.protocol.codec import decode_json, encode, now_ms
from companion_ws.protocol.errors import BadRequest, Internal, NotFound, StateRefused
from companion_ws.protocol.errors import StateTooLarge as StateTooLargeError
from companion_ws.protocol.errors import VersionConflict as VersionConflictError
from companion_ws.store.effects import StateRow, StateWrite, Verdict
from companion_ws.store.store import Store
from companion_ws.store.uow import UnitOfWork
from ui_state import InvalidPatch, StateDoc, apply_patch
from ui_state import StateTooLarge as StateTooLargeDoc
from ui_state import VersionConflict as VersionConflictDoc

__all__ = ["StateService", "changed"]

CAS_ATTEMPTS = 5

#: The tool packs' rules: why a patch may not be applied to a state, or None.
Refusal = Callable[[Any, Any], "str | None"]


class StateService:
    def __init__(
        self,
        store: Store,
        publisher: Publisher,
        locks: KeyedLock,
        metrics: Metrics,
        *,
        max_state_bytes: int,
        ttl_ms: int,
        refusal: Refusal | None = None,
        owed: Owed,
    ) -> None:
        self._owed = owed
        self._store = store
        self._publisher = publisher
        self._locks = locks
        self._metrics = metrics
        self._max_bytes = max_state_bytes
        self._ttl_ms = ttl_ms
        self._refusal = refusal

    async def load(self, session_id: str) -> StateDoc:
        """The session's state and version as committed."""
        _, row = await self._store.effects.read(session_id)
        return self.doc(session_id, row)

    @staticmethod
    def doc(session_id: str, row: StateRow | None) -> StateDoc:
        """The state document of a read row; ``NotFound`` for no session."""
        if row is None:
            raise NotFound(f"no session {session_id!r}")
        return StateDoc(decode_json(row.state), row.version)

    async def update(
        self,
        session_id: str,
        patch: Any,
        *,
        expected_version: int | None = None,
        request_id: str | None = None,
        sender: str | None = None,
    ) -> StateDoc:
        """Reduce, commit (with the broadcast it owes: hub/owed.py), then broadcast
        ``session_state_updated``."""
        async with self._locks(session_id):
            for _attempt in range(CAS_ATTEMPTS):
                _, row = await self._store.effects.read(session_id)
                doc = self.doc(session_id, row)
                new = self.reduce(doc, patch, expected_version)
                reason = self._refusal(doc.state, patch) if self._refusal else None
                if reason is not None:
                    raise StateRefused(reason)
                # Sealed before the commit: a broadcast over the event limit refuses the
                # change instead of leaving it committed and unannounced.
                frame = self._publisher.seal(
                    changed(session_id, patch, new.version, request_id, sender)
                )
                owner = f"state:{session_id}:{new.version}"
                owed = self._owed.rows(owner, [frame], row.last_seq if row is not None else 0)
                started = time.perf_counter()
                verdict = await self._store.effects.commit(
                    session_id, state=self.write(doc, new), owed=owed
                )
                self._metrics.state_commit_seconds.observe(time.perf_counter() - started)
                if verdict is Verdict.COMMITTED:
                    break
                # another process committed first: re-read and re-apply
            else:
                raise Internal("the state is changing too fast; retry")
            failpoints.hit("after_state_commit")
            await self._owed.deliver(owner, [frame], lazy=True)
        return new

    def write(self, old: StateDoc, new: StateDoc) -> StateWrite:
        """The compare-and-set of ``old`` -> ``new``, for one commit."""
        now = now_ms()
        return StateWrite(
            from_version=old.version,
            state=encode(new.state).decode(),
            version=new.version,
            now=now,
            expires_at=now + self._ttl_ms,
        )

    async def save(self, uow: UnitOfWork, session_id: str, old: StateDoc, new: StateDoc) -> bool:
        """:meth:`write` in ``uow`` (not committed), with the unit of work's other
        changes: False when another writer changed the state first."""
        change = self.write(old, new)
        return await uow.sessions.save_state(
            session_id,
            from_version=change.from_version,
            state=change.state,
            version=change.version,
            now=change.now,
            expires_at=change.expires_at,
        )

    def reduce(
        self, doc: StateDoc, patch: Any, expected_version: int | None, *, bounded: bool = True
    ) -> StateDoc:
        """The pure reducer, its errors translated to the protocol's. Only the hub's own
        bookkeeping (a task abandoned as the session ends) is not ``bounded`` by the
        size limit: it must never stop a session from ending."""
        max_bytes = self._max_bytes if bounded else sys.maxsize
        try:
            return apply_patch(doc, patch, expected_version=expected_version, max_bytes=max_bytes)
        except VersionConflictDoc as exc:
            raise VersionConflictError(str(exc), version=exc.current_version) from None
        except StateTooLargeDoc as exc:
            raise StateTooLargeError(str(exc), size=exc.size, limit=exc.limit) from None
        except InvalidPatch as exc:
            raise BadRequest(str(exc)) from None


def changed(
    session_id: str, patch: Any, version: int, request_id: str | None, sender: str | None
) -> f.SessionStateUpdated:
    """The broadcast of a committed state change."""
    return f.SessionStateUpdated(
        session_id=session_id,
        requestId=f.opt(request_id),
        patch=patch,
        version=version,
        sender=sender,
    )
