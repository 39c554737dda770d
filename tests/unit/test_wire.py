"""A broadcast's frame, built once (RFC 6455 section 5.2): checked against the
``websockets`` library's own parser."""

from __future__ import annotations

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from companion_ws.protocol.wire import text_frame


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 200_000])
def test_a_text_frame_of_any_size_parses_back(size: int) -> None:
    payload = b"x" * size
    reader = StreamReader()
    reader.feed_data(text_frame(payload))
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        frame = done.value
    else:  # pragma: no cover - the parser needs no more bytes
        raise AssertionError("incomplete frame")
    assert frame.opcode is Opcode.TEXT and frame.fin and frame.data == payload
