"""companion_ws.hub.ratelimit: the token buckets, driven by an explicit clock."""

from __future__ import annotations

import time

from hypothesis import given
from hypothesis import strategies as st

from companion_ws.hub.ratelimit import FrameLimiter, KeyedLimiter, TokenBucket, Verdict
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


def test_a_frame_limiter_answers_limited_then_flood_when_refusals_outrun_the_rate() -> None:
    limiter = FrameLimiter(rate=10, burst=5, flood=3)
    now = _clock()
    verdicts = [limiter.check(now) for _ in range(10)]
    assert verdicts == [Verdict.OK] * 5 + [Verdict.LIMITED] * 3 + [Verdict.FLOOD] * 2


def test_a_frame_limiter_forgives_a_client_that_slows_down() -> None:
    limiter = FrameLimiter(rate=10, burst=5, flood=3)
    now = _clock()
    assert [limiter.check(now) for _ in range(7)][-1] == Verdict.LIMITED
    later = now + 1.0  # both buckets full again
    assert [limiter.check(later) for _ in range(9)] == (
        [Verdict.OK] * 5 + [Verdict.LIMITED] * 3 + [Verdict.FLOOD]
    )


def test_a_keyed_limiter_limits_each_key_and_keeps_at_most_capacity_buckets() -> None:
    limiter = KeyedLimiter(rate=1, burst=2, capacity=3)
    now = _clock()
    assert [limiter.take("a", now) for _ in range(3)] == [True, True, False]
    assert limiter.take("b", now)  # another address has its own bucket
    for key in ("c", "d", "e"):
        limiter.take(key, now)
    assert len(limiter) == 3  # "a" and "b", the least recently used, were dropped
    assert limiter.take("a", now)  # "a" starts over with a full bucket
