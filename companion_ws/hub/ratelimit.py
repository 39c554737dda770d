"""Token buckets: ``rate`` messages per second with bursts up to ``burst``. Pure."""

from __future__ import annotations

import time
from collections import OrderedDict
from enum import IntEnum


class TokenBucket:
    __slots__ = ("_burst", "_last", "_rate", "_tokens")

    def __init__(self, rate: float, burst: int) -> None:
        self._rate = rate
        self._burst = float(burst)
        self._tokens = float(burst)
        self._last = time.monotonic()

    def take(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        self._tokens = min(self._burst, self._tokens + (now - self._last) * self._rate)
        self._last = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False


class Verdict(IntEnum):
    OK = 0
    LIMITED = 1  # answer ``rate_limited``, keep the connection
    FLOOD = 2  # close the connection 4429


class FrameLimiter(TokenBucket):
    """One connection's frames: a token bucket, and a second bucket for the frames the
    first refused. A client that overshoots now and then is answered ``rate_limited``;
    one whose refused frames outrun the rate by more than ``flood`` (it keeps sending
    after being told) is to be closed."""

    __slots__ = ("_refused",)

    def __init__(self, rate: float, burst: int, flood: int) -> None:
        super().__init__(rate, burst)
        self._refused = TokenBucket(rate, flood)

    def check(self, now: float | None = None) -> Verdict:
        now = time.monotonic() if now is None else now
        if self.take(now):
            return Verdict.OK
        return Verdict.LIMITED if self._refused.take(now) else Verdict.FLOOD


class KeyedLimiter:
    """A token bucket per key (a client address), in a table of at most ``capacity``
    buckets: the least recently used one is dropped first. A bucket dropped after an
    idle spell was full again anyway, so the bound only forgets keys that are quiet."""

    __slots__ = ("_buckets", "_burst", "_capacity", "_rate")

    def __init__(self, rate: float, burst: int, capacity: int = 10_000) -> None:
        self._rate = rate
        self._burst = burst
        self._capacity = capacity
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def take(self, key: str, now: float | None = None) -> bool:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self._rate, self._burst)
            if len(self._buckets) > self._capacity:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket.take(now)

    def __len__(self) -> int:
        return len(self._buckets)
