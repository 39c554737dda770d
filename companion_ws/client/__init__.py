"""The Python client of a companion_ws hub.

- :mod:`~companion_ws.client.mirror`: :class:`SessionMirror`, the pure session mirror
  (seq, gaps, snapshots, state versions) and its :class:`Phase`;
- :mod:`~companion_ws.client.actions`: what the mirror asks its driver to do;
- :mod:`~companion_ws.client.companion`: :class:`CompanionClient`, the asyncio driver
  (socket, backoff, requests);
- :mod:`~companion_ws.client.stream`, :mod:`~companion_ws.client.pending`,
  :mod:`~companion_ws.client.address`, :mod:`~companion_ws.client.errors`: its parts.
"""

from __future__ import annotations

from companion_ws.client.actions import (
    Action,
    Deliver,
    FetchState,
    Ready,
    RequestReplay,
    Resynced,
)
from companion_ws.client.address import TokenSource
from companion_ws.client.companion import CompanionClient
from companion_ws.client.errors import ClientClosed, ClientError, EventStreamOverflow
from companion_ws.client.mirror import Phase, Position, SessionMirror, sequence_of
from companion_ws.client.stream import EVENT_QUEUE_LIMIT, EventStream
from companion_ws.client.voice import FLOOR_CONTROLS, NO_FLOOR, floor_after, floor_from_welcome

__all__ = [
    "EVENT_QUEUE_LIMIT",
    "FLOOR_CONTROLS",
    "NO_FLOOR",
    "Action",
    "ClientClosed",
    "ClientError",
    "CompanionClient",
    "Deliver",
    "EventStream",
    "EventStreamOverflow",
    "FetchState",
    "Phase",
    "Position",
    "Ready",
    "RequestReplay",
    "Resynced",
    "SessionMirror",
    "TokenSource",
    "floor_after",
    "floor_from_welcome",
    "sequence_of",
]
