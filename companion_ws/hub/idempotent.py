"""One effect per idempotency key for backend publishes (gRPC ``Publish``, the bus's
inbound messages): the same key twice gives one event and the same answer, across
redeliveries and processes.

The tool-call ledger holds two rows per key, both scoped to the session:

1. a *claim*, committed before the publish: the table's primary key makes one process
   the publisher of the key; another that sees a fresh claim answers
   :class:`InProgress` (retry later);
2. a *receipt* ``{"seq", "epoch", "digest"}``, committed after the event is durable:
   every repeat of the same message answers it, ``duplicate``; the key used for a
   different message (another digest of its type and fields) is refused
   (:class:`KeyReused`), never dropped silently.

The ledger's ids are shared with tool calls, whose ids a client chooses: a row under a
key's name that is not this session's claim or receipt makes the key unusable
(:class:`KeyTaken`), it never answers for the key.

The claim commits with the frame it owes (an ``owed_events`` row,
:mod:`companion_ws.hub.owed`), and the receipt with that row's deletion. A claim older
than ``lease`` with no receipt was left by a process that died: the next delivery takes
it over and publishes what was owed, unless the history already has it (the process
died after the publish, before the receipt): then the receipt is written with the
event's seq, and the event is not published twice. A failed publish releases its claim
at once (the next delivery takes it over).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

import msgspec
from msgspec import UNSET

from companion_ws import failpoints
from companion_ws.hub.locks import KeyedLock
from companion_ws.hub.owed import Owed
from companion_ws.hub.publisher import Publisher, Sealed
from companion_ws.protocol.codec import JSON_ERRORS, decode_json, encode, now_ms
from companion_ws.protocol.errors import BadRequest, Internal
from companion_ws.protocol.frames import BroadcastFrame
from companion_ws.store.effects import LedgerRow, Recorded, Verdict
from companion_ws.store.store import Store
from companion_ws.values import Position

__all__ = ["MAX_KEY", "IdempotentPublisher", "InProgress", "KeyReused", "KeyTaken", "Published"]

log = logging.getLogger("companion_ws.idempotent")

MAX_KEY = 128
_CLAIM = "publish"


class InProgress(Internal):
    """Another process holds this key's claim and has not answered yet: retry later."""


class KeyTaken(BadRequest):
    """The ledger holds a row under this key's name that is not this session's claim or
    receipt (a tool call chose that id): the key cannot be used; choose another."""


class KeyReused(BadRequest):
    """A repeat of a key whose message differs from the one it was first used for: it
    is refused, never answered as a duplicate (and so never dropped silently)."""


_TAKEN = "this idempotency_key cannot be used in this session (its ledger name is taken)"


@dataclass(frozen=True, slots=True)
class Published:
    session_id: str
    seq: int
    epoch: str
    duplicate: bool = False


class IdempotentPublisher:
    def __init__(self, store: Store, publisher: Publisher, owed: Owed, *, lease: float) -> None:
        self._owed = owed
        self._store = store
        self._publisher = publisher
        self._lease_ms = int(lease * 1000)
        self._locks = KeyedLock()

    async def publish(self, frame: BroadcastFrame, key: str | None = None) -> Published:
        """Publish ``frame`` (into a live session the caller checked); once per ``key``."""
        if not key:
            event = await self._publisher.publish(frame)
            return Published(event.session_id, event.seq, event.epoch)
        sid = frame.session_id
        claim_id = f"{_CLAIM}:{sid}:{key}"
        receipt_id = f"{claim_id}#done"
        digest = _digest(frame)
        async with self._locks(claim_id):
            receipt = await self._store.effects.recorded(receipt_id)
            if receipt is not None:
                return _receipt(sid, receipt, digest)
            sealed = self._publisher.seal(frame)
            if await self._claim(sid, claim_id, sealed):
                # A process died holding the claim: what it owed is published once
                # (not again if it was, before the crash), and its receipt written.
                recovered = await self._owed.recover(claim_id)
                if recovered:
                    return await self._settle(sid, claim_id, recovered[0], digest, key)
            try:
                event = await self._publisher.publish(sealed)
            except Exception:  # (never DB work in a cancelled task: companion_ws.store.uow)
                await self._release(claim_id)
                raise
            failpoints.hit("after_backend_publish")
            return await self._settle(sid, claim_id, Position(event.seq, event.epoch), digest, key)

    async def _settle(
        self, sid: str, claim_id: str, at: Position, digest: str, key: str
    ) -> Published:
        """The receipt of the published event, and the owed frame settled, in one commit."""
        receipt = {"seq": at.seq, "epoch": at.epoch, "digest": digest}
        verdict = await self._store.effects.commit(
            sid, ledger=_row(f"{claim_id}#done", sid, receipt), settle=claim_id
        )
        if verdict is Verdict.DUPLICATE:
            # Another process wrote the receipt first (both took a stale claim over).
            log.warning("the key %r of %s was answered twice", key, sid)
            await self._store.owed.settle(claim_id)
        return Published(sid, at.seq, at.epoch)

    async def _claim(self, sid: str, claim_id: str, sealed: Sealed) -> bool:
        """Claim the key, with the frame it owes; True when a stale claim was taken over."""
        existing = await self._store.effects.recorded(claim_id)
        if existing is not None and existing.session_id != sid:
            raise KeyTaken(_TAKEN)
        if existing is None:
            claim = _row(claim_id, sid, {"claimed": True})
            owed = self._owed.rows(claim_id, [sealed], 0)
            verdict = await self._store.effects.commit(sid, ledger=claim, owed=owed)
            if verdict is Verdict.DUPLICATE:
                raise InProgress("this idempotency key is being published; retry")
            return False
        if now_ms() - existing.created_at < self._lease_ms:
            raise InProgress("this idempotency key is being published; retry")
        log.info("taking over the stale claim %s", claim_id)
        return True

    async def _release(self, claim_id: str) -> None:
        """Backdate the claim so that the next try takes it over at once."""
        try:
            await self._store.effects.backdate(claim_id)
        except Exception as exc:
            log.warning("releasing %s failed: %s", claim_id, exc)


def _digest(frame: BroadcastFrame) -> str:
    """What a message says (its type and fields), without what may differ between two
    sendings of it (its time, its correlation id, the credential it came with). [pure]"""
    said = msgspec.structs.replace(frame, timestamp=0, requestId=UNSET)
    if getattr(said, "sender", None) is not None:
        said = msgspec.structs.replace(said, sender=None)
    return hashlib.sha256(encode(said)).hexdigest()


def _receipt(sid: str, recorded: Recorded, digest: str) -> Published:
    """The answer a repeat gets, from the receipt's row; the row must be a receipt of
    this session (the ledger's ids are shared with tool calls, whose ids a client
    chooses: a row it made under this name is not a receipt), and the repeat the same
    message (a receipt from before digests were kept answers any)."""
    try:
        body = decode_json(recorded.result)
        if recorded.session_id != sid or recorded.is_error:
            raise ValueError(recorded.session_id)
        seq, epoch = body["seq"], body["epoch"]
        if type(seq) is not int or not isinstance(epoch, str):
            raise ValueError(body)
    except (*JSON_ERRORS, KeyError, TypeError, ValueError):
        raise KeyTaken(_TAKEN) from None
    if body.get("digest", digest) != digest:
        raise KeyReused(
            "this idempotency_key was used for a different message in this session; "
            "a key names one message"
        )
    return Published(sid, seq, epoch, duplicate=True)


def _row(row_id: str, sid: str, result: object) -> LedgerRow:
    return LedgerRow(row_id, sid, "publish", encode(result).decode(), False, now_ms())
