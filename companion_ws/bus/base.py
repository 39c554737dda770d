"""The Bus interface (one screen): a durable inbound queue shared by every hub process,
a dead-letter stream and an outbound stream (docs/protocol.md section 15). One implementation
per file, picked by URL scheme (:func:`companion_ws.bus.make_bus`).

The bus knows nothing of sessions: it hands each inbound message's bytes to the
handler and acknowledges it when the handler answers True (redelivers it later when
False or when the handler raises, and after ``ack_wait`` when this process dies).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Bus", "BusConfig", "Handler"]

#: One inbound message's bytes -> True: acknowledge it; False: deliver it again later.
Handler = Callable[[bytes], Awaitable[bool]]


@dataclass(frozen=True, slots=True)
class BusConfig:
    url: str
    prefix: str = "companion"
    stream: str = "COMPANION"
    consumer: str = "companion-hub"
    ack_wait: float = 30.0
    batch: int = 64  # messages fetched (and handled concurrently) at a time
    dead_maxlen: int = 100_000  # Redis: dead letters kept (the oldest go first)
    # NATS: the largest message the stream the hub makes accepts (COMPANION_MAX_BODY_BYTES),
    # so a publisher is refused at its publish instead of the hub reading it to refuse it.
    max_message_bytes: int = 1 << 20


class Bus(Protocol):
    async def start(self, handler: Handler) -> None:
        """Connect, make what is missing (stream, consumer group), begin consuming."""

    async def close(self) -> None:
        """Stop consuming (messages in hand are redelivered) and disconnect."""

    async def ping(self) -> bool:
        """Whether the bus is usable now."""

    async def dead(self, body: bytes) -> None:
        """Append a dead letter (JSON ``{"reason", "message"}``)."""

    async def out(self, session_id: str, seq: int, epoch: str, payload: bytes) -> None:
        """Publish a session event (the frame as clients receive it), once per seq."""
