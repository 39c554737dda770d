"""The bus bridge: a thin adapter between a :class:`~companion_ws.bus.base.Bus` and the
node's services (docs/protocol.md section 15).

Inbound, each message is published into its session as a ``service`` would: through
the node's idempotent publisher (one event per ``idempotency_key``, across redeliveries
and processes), with ``requestId`` = ``correlation_id``; the bus acknowledges it only
after that event is durable. A message that cannot be applied goes to the dead-letter
stream as ``{"reason", "message"}``; one that cannot be applied *yet* (the database or
the broker away, its key in flight elsewhere) is delivered again later.

Outbound is a projection of the session log: a tap on the node's broker handler queues
each event in the order the broker delivers it (seq order per session), and one task
publishes them in that order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from companion_ws import failpoints, telemetry
from companion_ws.bus.base import Bus
from companion_ws.hub.idempotent import MAX_KEY
from companion_ws.hub.locks import KeyedLock
from companion_ws.hub.node import Node
from companion_ws.protocol.backend import backend_frame
from companion_ws.protocol.codec import JSON_ERRORS, decode_body, encode
from companion_ws.protocol.errors import BadRequest, CompanionError, Internal, PayloadTooLarge
from companion_ws.values import Event

__all__ = ["BusBridge"]

log = logging.getLogger("companion_ws.bus")

#: Outbound events queued beyond this are dropped (and logged): the bus is away.
OUT_BACKLOG = 100_000
SENDER = "bus"
#: A dead letter quotes at most this many bytes of its message.
DEAD_EXCERPT = 4096


class _Dead(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class BusBridge:
    def __init__(self, node: Node, bus: Bus, *, max_message_bytes: int) -> None:
        self._node = node
        self._bus = bus
        # A message larger than this is not even decoded (COMPANION_MAX_BODY_BYTES);
        # the event it makes is held to COMPANION_MAX_EVENT_BYTES by the publisher.
        self._max_message_bytes = max_message_bytes
        self._locks = KeyedLock()  # one session's messages are applied in arrival order
        self._outq: asyncio.Queue[Event | None] = asyncio.Queue()
        self._out_task: asyncio.Task[None] | None = None
        self._dropped = 0

    async def start(self) -> None:
        self._out_task = asyncio.create_task(self._send_out(), name="bus-out")
        self._node.listeners.add_tap(self._tap)
        self._node.checks["bus"] = self._bus.ping
        await self._bus.start(self.handle)

    async def stop(self) -> None:
        self._node.listeners.remove_tap(self._tap)
        self._node.checks.pop("bus", None)
        await self._bus.close()  # after it: no inbound message is in hand
        if self._out_task is not None:
            self._outq.put_nowait(None)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._out_task, 5.0)

    # ---------------------------------------------------------------- inbound

    async def handle(self, data: bytes) -> bool:
        """Apply one inbound message: True to acknowledge it, False to get it again."""
        try:
            if len(data) > self._max_message_bytes:
                raise _Dead(
                    f"too_large: the message is {len(data)} bytes, over the limit of "
                    f"{self._max_message_bytes} bytes"
                )
            message = _parse(data)
            async with self._locks(message["session_id"]):
                await self._apply(message)
        except _Dead as dead:
            await self._bus.dead(dead_letter(dead.reason, data))
            return True
        except Internal as exc:
            log.info("a bus message is retried: %s", exc.message)
            return False
        failpoints.hit("bus_before_ack")
        return True

    @telemetry.on_bus_message
    async def _apply(self, message: dict[str, Any]) -> None:
        sid = message["session_id"]
        row = await self._node.sessions.get(sid)
        if row is None:
            raise _Dead(f"session_not_found: no session {sid!r}")
        if row.ended_at is not None:
            raise _Dead(f"session_ended: the session {sid!r} has ended")
        try:
            frame = backend_frame(
                sid,
                message.get("type"),
                message,
                request_id=message.get("correlation_id") or None,
                sender=SENDER,
            )
            await self._node.backend.publish(frame, message.get("idempotency_key") or None)
        except Internal:
            raise
        except PayloadTooLarge as exc:
            raise _Dead(f"too_large: {exc.message}") from None
        except CompanionError as exc:
            raise _Dead(f"{exc.code}: {exc.message}") from None

    # ---------------------------------------------------------------- outbound

    def _tap(self, event: Event) -> None:
        if self._outq.qsize() >= OUT_BACKLOG:
            self._dropped += 1
            if self._dropped % 1000 == 1:
                log.warning("the bus is behind: %d outbound events dropped", self._dropped)
            return
        self._outq.put_nowait(event)

    async def _send_out(self) -> None:
        while True:
            event = await self._outq.get()
            if event is None:
                return
            for attempt in range(5):
                try:
                    await self._bus.out(event.session_id, event.seq, event.epoch, event.payload)
                    break
                except Exception as exc:
                    log.warning("outbound %s/%d failed: %s", event.session_id, event.seq, exc)
                    await asyncio.sleep(0.2 * (attempt + 1))


def _parse(data: bytes) -> dict[str, Any]:
    try:
        message = decode_body(data)  # every door's decoding: depth-checked
    except JSON_ERRORS:
        raise _Dead("invalid_json: the message is not valid JSON") from None
    except BadRequest as exc:
        raise _Dead(f"{exc.code}: {exc.message}") from None
    if not isinstance(message, dict):
        raise _Dead("invalid_message: the message must be a JSON object")
    sid = message.get("session_id")
    if not isinstance(sid, str) or not sid or len(sid) > 64:
        raise _Dead("invalid_message: session_id must be a string of 1 to 64 characters")
    key = message.get("idempotency_key")
    if key is not None and (not isinstance(key, str) or len(key) > MAX_KEY):
        raise _Dead(f"invalid_message: idempotency_key must be a string of <= {MAX_KEY}")
    cid = message.get("correlation_id")
    if cid is not None and not isinstance(cid, str):
        raise _Dead("invalid_message: correlation_id must be a string")
    return message


def dead_letter(reason: str, data: bytes) -> bytes:
    """The dead letter of ``data``: ``{"reason", "message"}``, the message quoted whole
    up to :data:`DEAD_EXCERPT` bytes; a longer one is cut there and says so
    (``"truncated": true`` and its ``"bytes"``). [pure]"""
    if len(data) <= DEAD_EXCERPT:
        return encode({"reason": reason, "message": _text(data)})
    excerpt = _text(data[:DEAD_EXCERPT])
    return encode({"reason": reason, "message": excerpt, "truncated": True, "bytes": len(data)})


def _text(data: bytes) -> str:
    return data.decode("utf-8", "replace")
