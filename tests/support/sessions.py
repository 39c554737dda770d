"""A session value to store directly, for the tests of the store and the event log."""

from __future__ import annotations

from companion_ws.protocol.codec import now_ms
from companion_ws.values import Session


def new_session(
    sid: str,
    *,
    owner: str = "alice",
    state: str = "{}",
    version: int = 0,
    ttl_ms: int = 60_000,
    restored_from: str | None = None,
) -> Session:
    now = now_ms()
    return Session(
        id=sid,
        owner_id=owner,
        created_at=now,
        last_activity_at=now,
        expires_at=now + ttl_ms,
        ended_at=None,
        end_reason=None,
        state=state,
        state_version=version,
        last_seq=0,
        epoch="e1",
        epoch_clean=True,
        restored_from=restored_from,
    )
