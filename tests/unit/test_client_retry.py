"""companion_ws.client.retry: when the client reconnects, and when it gives up."""

from __future__ import annotations

from companion_ws.client.retry import Retry, Stop


def test_a_final_close_stops_at_once() -> None:
    retry = Retry(started=0.0)
    assert retry.after(4403, "forbidden", welcomed=True, now=1.0) == Stop("forbidden")


def test_backoff_grows_and_starts_again_after_a_welcome() -> None:
    retry = Retry(started=0.0, backoff_initial=1.0, backoff_max=8.0)
    delays = [retry.after(1006, "gone", welcomed=False, now=t) for t in range(5)]
    assert all(isinstance(d, float) and 0 <= d <= 8.0 for d in delays)
    assert retry.failures == 5
    retry.after(1012, "restarting", welcomed=True, now=10.0)
    assert retry.failures == 0


def test_nothing_ever_answering_is_reported_within_the_first_connect_limit() -> None:
    retry = Retry(started=0.0, where="ws://h:9/ws", first_connect_timeout=3.0, backoff_max=60)
    delay = retry.after(1006, "refused", welcomed=False, now=2.5)
    assert isinstance(delay, float) and delay <= 0.5  # never past the limit
    stop = retry.after(1006, "refused", welcomed=False, now=3.0)
    assert stop == Stop("nothing answers at ws://h:9/ws (refused)")


def test_after_a_first_welcome_an_outage_is_ridden_out() -> None:
    retry = Retry(started=0.0, first_connect_timeout=3.0)
    retry.after(1012, "restarting", welcomed=True, now=1.0)
    assert isinstance(retry.after(1006, "gone", welcomed=False, now=100.0), float)


def test_max_attempts_in_a_row() -> None:
    retry = Retry(started=0.0, max_attempts=2)
    assert isinstance(retry.after(1006, "x", welcomed=False, now=0.0), float)
    assert retry.after(1006, "x", welcomed=False, now=0.0) == Stop("gave up after 2 attempts: x")
