"""The client's exceptions.

Exception
├── ClientError            an ``error`` frame answered a request
└── EventStreamOverflow    an ``events()`` iterator fell too far behind
ConnectionError
└── ClientClosed           the client has stopped for good
"""

from __future__ import annotations

from typing import Any

__all__ = ["ClientClosed", "ClientError", "EventStreamOverflow"]

Frame = dict[str, Any]


class ClientError(Exception):
    """An ``error`` frame answered a request."""

    def __init__(self, frame: Frame) -> None:
        self.frame = frame
        self.code = str(frame.get("code", "internal"))
        self.message = str(frame.get("message", ""))
        super().__init__(f"{self.code}: {self.message}")


class ClientClosed(ConnectionError):
    """The client has stopped for good: a terminal close code, ``close()``, or
    ``max_attempts`` failed connects in a row. ``error`` is the hub's ``error`` frame
    that came with the close, if any."""

    def __init__(self, code: int | None, reason: str, error: Frame | None = None) -> None:
        self.code = code
        self.reason = reason
        self.error = error
        super().__init__(f"closed ({code}): {reason}" if reason else f"closed ({code})")


class EventStreamOverflow(Exception):
    """An ``events()`` iterator fell more than ``EVENT_QUEUE_LIMIT`` frames behind and
    was cut off: frames after that point were not queued for it. The client itself is
    unaffected; ``client.state`` is still current."""
