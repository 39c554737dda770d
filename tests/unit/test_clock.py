"""A clock that jumps (docs/protocol.md section 4, "which clock"): deadlines, TTLs and rate
limits run on the monotonic clock, so a wall clock that jumps (NTP stepping it, a VM
resumed, an operator) changes none of them. Only what must agree with the world or with
other processes reads the wall clock, in the files listed below."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from companion_ws.hub.ratelimit import FrameLimiter, KeyedLimiter, TokenBucket, Verdict

ROOT = Path(__file__).resolve().parents[2] / "companion_ws"

#: Where the wall clock is read, and why (each is written down in docs/protocol.md).
WALL_CLOCK = {
    "protocol/clock.py": "now_ms: stored and wire timestamps (events, rows, expiries)",
    "auth/tokens.py": "a token's iat/exp, which other parties check",
    "hub/lifetimes.py": "a credential's end is its token's exp",
    "endpoints/talk.py": "the agent capability's exp, for the page",
    "endpoints/admin.py": "a timestamp shown to an operator",
    "endpoints/elevenlabs.py": "a webhook signature's timestamp, ElevenLabs' clock",
    "reach.py": "a development certificate's validity, which browsers check",
    "demo/standin_api.py": "the stand-in's conversation metadata, as ElevenLabs stamps it",
}
_WALL = re.compile(r"\btime\.time(_ns)?\(|\bdatetime\.(now|utcnow|today)\(|\bdate\.today\(")


@pytest.fixture
def jumping(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    """The wall clock, shifted by what the test appends (seconds)."""
    real = time.time
    shift = [0.0]
    monkeypatch.setattr(time, "time", lambda: real() + sum(shift))
    monkeypatch.setattr(time, "time_ns", lambda: int((real() + sum(shift)) * 1e9))
    yield shift


@pytest.mark.parametrize("jump", [3600.0, -3600.0])
def test_rate_limits_ignore_a_wall_clock_jump(jumping: list[float], jump: float) -> None:
    bucket, frames, keyed = TokenBucket(1, 2), FrameLimiter(1, 2, 1), KeyedLimiter(1, 2)
    for _ in range(2):
        assert bucket.take() and frames.check() is Verdict.OK and keyed.take("a")
    jumping.append(jump)
    # An hour "later" (or earlier) by the wall clock: no refill, no negative wait.
    assert not bucket.take()
    assert frames.check() is Verdict.LIMITED
    assert not keyed.take("a")


def test_the_wall_clock_is_read_only_where_it_must_be() -> None:
    readers = {
        str(path.relative_to(ROOT))
        for path in ROOT.rglob("*.py")
        if _WALL.search(path.read_text(encoding="utf-8"))
    }
    unexplained = readers - set(WALL_CLOCK)
    assert not unexplained, (
        f"{sorted(unexplained)} read the wall clock: use time.monotonic() for a deadline, "
        "a TTL or a rate, or add the file to WALL_CLOCK and docs/protocol.md section 4"
    )
    assert readers == set(WALL_CLOCK)  # the list stays true
