"""companion_ws.hub.ratelimit.TokenBucket, driven by an explicit clock."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from companion_ws.hub.ratelimit import TokenBucket
from tests.unit.strategies import relaxed


def _clock() -> float:
    """A start time after the bucket's own (it starts at ``time.monotonic()``), on a whole
    second so that the steps below are exact in binary floating point."""
    return float(int(time.monotonic()) + 1)


def test_a_full_bucket_allows_a_burst_then_refuses() -> None:
    bucket = TokenBucket(rate=10, burst=5)
    now = _clock()
    assert [bucket.take(now) for _ in range(6)] == [True] * 5 + [False]


def test_tokens_come_back_at_the_rate_and_never_beyond_the_burst() -> None:
    bucket = TokenBucket(rate=2, burst=5)
    now = _clock()
    for _ in range(5):
        assert bucket.take(now)
    assert not bucket.take(now + 0.25)  # half a token
    assert bucket.take(now + 0.5)  # one token back
    assert not bucket.take(now + 0.5)
    later = now + 3600  # a long pause refills to the burst, not more
    assert [bucket.take(later) for _ in range(6)] == [True] * 5 + [False]


@relaxed
@given(
    rate=st.floats(0.5, 1000),
    burst=st.integers(1, 50),
    gaps=st.lists(st.floats(0, 2), min_size=1, max_size=60),
)
def test_never_more_than_burst_plus_rate_times_elapsed(
    rate: float, burst: int, gaps: list[float]
) -> None:
    bucket = TokenBucket(rate, burst)
    start = now = time.monotonic()
    taken = 0
    for gap in gaps:
        now += gap
        taken += bucket.take(now)
    assert taken <= burst + rate * (now - start) + 1e-6
