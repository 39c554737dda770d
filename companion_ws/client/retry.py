"""When the client reconnects, and when it gives up. Pure: a close in, a decision out
(a delay, or why to stop); the clock is passed in, so it is tested without a socket.

Exponential backoff with full jitter between attempts; the count starts again after
every welcome. It stops for good after a close :func:`should_reconnect` calls final,
after ``max_attempts`` failures in a row, and when nothing has ever answered within
``first_connect_timeout`` (a wrong URL or port is a mistake to report, not an outage to
ride out).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from companion_ws.protocol.closecodes import should_reconnect

__all__ = ["Retry", "Stop"]


@dataclass(frozen=True, slots=True)
class Stop:
    reason: str


@dataclass(slots=True)
class Retry:
    started: float  # when the client started, on the caller's clock
    where: str = ""  # what it connects to, for the "nothing answers" reason
    backoff_initial: float = 0.2
    backoff_max: float = 5.0
    max_attempts: int | None = None
    first_connect_timeout: float | None = None
    failures: int = 0
    ever: bool = False  # some connection was welcomed
    _random: random.Random = field(default_factory=random.Random)

    def after(self, code: int | None, reason: str, *, welcomed: bool, now: float) -> float | Stop:
        """After a connection closed: seconds to wait before the next, or :class:`Stop`."""
        self.ever = self.ever or welcomed
        if not should_reconnect(code):
            return Stop(reason)
        limit = self.first_connect_timeout
        if not self.ever and limit is not None and now - self.started >= limit:
            return Stop(f"nothing answers at {self.where} ({reason})")
        self.failures = 0 if welcomed else self.failures + 1
        if self.max_attempts is not None and self.failures >= self.max_attempts:
            return Stop(f"gave up after {self.failures} attempts: {reason}")
        ceiling = min(self.backoff_max, self.backoff_initial * 2**self.failures)
        delay = self._random.uniform(0, ceiling)
        if not self.ever and limit is not None:  # never wait past the first-connect limit
            delay = min(delay, max(0.0, self.started + limit - now))
        return delay
