"""How many bytes of a request head one HTTP connection has sent, as its parser is fed
(docs/protocol.md section 4, v1.2, "doors before the token").

The parser (httptools) keeps a head's request line and headers in memory until the head
is complete, however long it is, and says only *that* a head began or ended, never at
which byte. So the bytes are counted by how they are fed: :meth:`HeadMeter.feed` hands what a
connection received to the parser at most :meth:`~HeadMeter.room` bytes at a time; the
parser's callbacks tell the meter what happened during each piece (:meth:`begin`,
:meth:`head_complete`, :meth:`message_complete`), and the meter counts the piece
(:meth:`fed`) and stops as soon as the head in progress has reached the limit without
ending. The parser never holds more than the limit of one head.

The count is exact for every head that starts at the start of a feed (the first request,
and each request after its predecessor was answered); a head that starts in the middle
of a feed (HTTP pipelining: a request sent before the previous one was answered, in the
same read) is counted from the start of that feed, which may count a little of its
predecessor too, never less than the head itself.

Pure: no socket, no clock; ``tests/unit/test_head_meter.py``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable

__all__ = ["HeadMeter"]


class _Part(enum.Enum):
    BETWEEN = "between"  # before a request, or after one's last byte
    HEAD = "head"  # a request line or its headers
    BODY = "body"  # the head is complete: a body, or nothing, until the request ends


class HeadMeter:
    """The request head in progress on one connection, counted in bytes."""

    __slots__ = ("_began", "_count", "_part", "limit")

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError(f"a request head limit must be at least 1 byte, not {limit}")
        self.limit = limit
        self._part = _Part.BETWEEN
        self._count = 0  # bytes of the head in progress (none outside a head)
        self._began = False  # a head began during the current feed

    @property
    def in_head(self) -> bool:
        """A request head has begun and is not complete."""
        return self._part is _Part.HEAD

    @property
    def count(self) -> int:
        """The bytes counted for the head in progress (0 outside a head)."""
        return self._count

    def room(self) -> int:
        """The most bytes the next feed may take: what is left of the limit for the head
        in progress (the whole limit outside one). At least 1 while the head is within
        the limit, so the driver always moves on."""
        return self.limit - self._count

    def feed(self, data: bytes, parse: Callable[[bytes | memoryview], bool]) -> bool:
        """Hand ``data`` to ``parse`` in pieces of at most :meth:`room` bytes (all of it
        at once when it fits), counting each. ``parse`` feeds the parser (whose callbacks
        call :meth:`begin` and the others) and returns False when nothing more may be fed
        (the connection was upgraded or is closing). True: the head in progress went over
        the limit, and nothing after that piece was fed."""
        size = len(data)
        if size <= self.room():
            return parse(data) and self.fed(size)
        view = memoryview(data)
        offset = 0
        while offset < size:
            piece = view[offset : offset + self.room()]
            if not parse(piece):
                return False
            offset += len(piece)
            if self.fed(len(piece)):
                return True
        return False

    # -- what the parser reported during a feed -----------------------------------

    def begin(self) -> None:
        self._part = _Part.HEAD
        self._began = True

    def head_complete(self) -> None:
        self._part = _Part.BODY

    def message_complete(self) -> None:
        self._part = _Part.BETWEEN

    # -- after the feed --------------------------------------------------------------

    def fed(self, size: int) -> bool:
        """``size`` bytes were fed: count them; True when the head in progress has
        reached the limit without ending (it is then larger than the limit)."""
        if self._part is _Part.HEAD:
            # A head that began during this feed has at most ``size`` of its bytes in it.
            self._count = size if self._began else self._count + size
        else:
            self._count = 0
        self._began = False
        return self._part is _Part.HEAD and self._count >= self.limit
