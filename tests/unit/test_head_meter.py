"""companion_ws.endpoints.head_meter: a request head's bytes, counted as httptools' own
parser is fed (the parser the hub runs, with no socket), as ``HttpProtocol`` wires it."""

from __future__ import annotations

import httptools
import pytest
from hypothesis import given
from hypothesis import strategies as st

from companion_ws.endpoints.head_meter import HeadMeter
from tests.unit.strategies import relaxed

LIMIT = 1024


class Parser:
    """httptools' request parser reporting to a meter; keeps what it was fed of each head."""

    def __init__(self, meter: HeadMeter) -> None:
        self.meter = meter
        self.parser = httptools.HttpRequestParser(self)
        self.heads = 0  # heads complete
        self.messages = 0  # requests complete
        self.fed = 0  # bytes fed since the last head was complete
        self.most_fed = 0  # the most bytes fed to the parser while one head was incomplete

    def on_message_begin(self) -> None:
        self.meter.begin()

    def on_headers_complete(self) -> None:
        self.meter.head_complete()
        self.heads += 1
        self.fed = 0

    def on_message_complete(self) -> None:
        self.meter.message_complete()
        self.messages += 1

    def parse(self, piece: bytes | memoryview) -> bool:
        complete = self.heads
        self.parser.feed_data(piece)
        if self.heads == complete:
            self.fed += len(piece)
            self.most_fed = max(self.most_fed, self.fed)
        return True


def head(size: int, path: str = "/") -> bytes:
    """A GET whose head (request line, headers, blank line) is exactly ``size`` bytes."""
    start = f"GET {path} HTTP/1.1\r\nHost: hub\r\nX-Pad: ".encode()
    pad = size - len(start) - 4
    assert pad >= 0
    return start + b"a" * pad + b"\r\n\r\n"


def send(meter: HeadMeter, parser: Parser, data: bytes, chunk: int) -> bool:
    """``data`` as reads of ``chunk`` bytes; True once the meter refused."""
    return any(meter.feed(data[i : i + chunk], parser.parse) for i in range(0, len(data), chunk))


@pytest.mark.parametrize("chunk", [1, 7, 100, LIMIT, 64 * 1024])
def test_a_head_of_the_limit_passes_and_one_byte_more_is_refused(chunk: int) -> None:
    meter = HeadMeter(LIMIT)
    parser = Parser(meter)
    assert not send(meter, parser, head(LIMIT), chunk)
    assert parser.messages == 1

    meter = HeadMeter(LIMIT)
    parser = Parser(meter)
    assert send(meter, parser, head(LIMIT + 1), chunk)
    assert parser.heads == 0 and parser.most_fed == LIMIT


def test_a_20_mib_head_is_refused_after_the_limit_and_never_fed_further() -> None:
    meter = HeadMeter(LIMIT)
    parser = Parser(meter)
    stream = b"GET / HTTP/1.1\r\nX-Pad: " + b"a" * (20 * 1024 * 1024)
    refused_after = None
    for i in range(0, len(stream), 65536):
        if meter.feed(stream[i : i + 65536], parser.parse):
            refused_after = i + 65536
            break
    assert refused_after == 65536  # the first read
    assert parser.most_fed == LIMIT


def test_a_body_larger_than_the_limit_is_not_a_head() -> None:
    meter = HeadMeter(LIMIT)
    parser = Parser(meter)
    body = b"x" * (5 * LIMIT)
    request = b"POST / HTTP/1.1\r\nHost: hub\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body)
    assert not send(meter, parser, request, 64 * 1024)
    assert not send(meter, parser, head(LIMIT), 64 * 1024)  # the next request, exact again
    assert parser.messages == 2


def test_a_head_that_starts_inside_a_read_is_counted_from_the_start_of_that_read() -> None:
    """Pipelining: a second request in the same read as the first. Its head is never
    counted less than it is; here, with most of its read taken by the first request, it
    is counted from the start of the read, and refused (documented, conservative)."""
    meter = HeadMeter(LIMIT)
    parser = Parser(meter)
    assert not send(meter, parser, head(100) + head(100), 64 * 1024)  # two whole heads: fine
    assert parser.messages == 2
    meter = HeadMeter(LIMIT)
    parser = Parser(meter)
    assert send(meter, parser, head(LIMIT * 6 // 10) + head(LIMIT * 6 // 10), 64 * 1024)
    assert parser.messages == 1


def test_the_room_is_never_zero_while_a_head_is_within_the_limit() -> None:
    meter = HeadMeter(LIMIT)
    meter.begin()
    assert not meter.fed(LIMIT - 1)
    assert meter.room() == 1
    assert meter.fed(1)  # reached the limit without ending


def test_a_limit_below_one_byte_is_refused() -> None:
    with pytest.raises(ValueError):
        HeadMeter(0)


@relaxed
@given(
    sizes=st.lists(st.integers(min_value=40, max_value=2 * LIMIT), min_size=1, max_size=6),
    chunk=st.integers(min_value=1, max_value=3 * LIMIT),
)
def test_requests_one_after_another_are_refused_exactly_at_the_first_head_over_the_limit(
    sizes: list[int], chunk: int
) -> None:
    """Each request sent after the previous one (keep-alive, not pipelined), in reads of
    ``chunk`` bytes: every head up to the limit is served, the first larger one refused,
    and the parser is never fed more than the limit of one head."""
    meter = HeadMeter(LIMIT)
    parser = Parser(meter)
    refused = None
    for n, size in enumerate(sizes):
        if send(meter, parser, head(size), chunk):
            refused = n
            break
    first_over = next((n for n, size in enumerate(sizes) if size > LIMIT), None)
    assert refused == first_over
    assert parser.messages == (len(sizes) if first_over is None else first_over)
    assert parser.most_fed <= LIMIT


@relaxed
@given(
    sizes=st.lists(st.integers(min_value=40, max_value=2 * LIMIT), min_size=1, max_size=6),
    chunk=st.integers(min_value=1, max_value=3 * LIMIT),
)
def test_pipelined_heads_are_never_counted_less_than_they_are(sizes: list[int], chunk: int) -> None:
    """All the requests in one stream, read in ``chunk``-byte pieces: a head over the
    limit is always refused before the parser holds more than the limit of it."""
    meter = HeadMeter(LIMIT)
    parser = Parser(meter)
    refused = send(meter, parser, b"".join(head(size) for size in sizes), chunk)
    first_over = next((n for n, size in enumerate(sizes) if size > LIMIT), None)
    if first_over is not None:
        assert refused and parser.messages <= first_over
    assert parser.most_fed <= LIMIT
