"""Failpoints: named places where the process can be made to crash on purpose, so that
tests can show what a real crash there leaves behind (as etcd's gofail and TiKV's
fail-rs do). ``COMPANION_FAILPOINTS=after_ledger`` arms one; an armed point ends the
process at once with ``os._exit``, the nearest thing to ``kill -9`` from inside. A point
armed with a number of seconds, ``stall_publish=3``, stalls there instead (a database
or broker that does not answer): see :func:`delay`.

For tests only. Nothing is armed unless the variable is set, and it is read once, at
start. The points: ``after_ledger`` (a tool's commit is in, its broadcasts not yet
published), ``after_publish`` (published, not yet settled: ``hub/owed.py``),
``after_state_commit`` (a state change is in, its broadcast not yet published),
``after_backend_publish``, ``bus_before_ack``; ``stall_publish`` (every publish waits).
"""

from __future__ import annotations

import logging
import os

__all__ = ["arm", "hit"]

log = logging.getLogger("companion_ws.failpoints")

_armed: frozenset[str] = frozenset()
_delays: dict[str, float] = {}
EXIT_CODE = 86


def arm(names: str | None) -> None:
    """Arm the comma-separated failpoints (None or empty: none); ``name=seconds`` stalls."""
    global _armed, _delays
    points = [n.strip() for n in (names or "").split(",") if n.strip()]
    _armed = frozenset(p for p in points if "=" not in p)
    _delays = {p.split("=")[0]: float(p.split("=")[1]) for p in points if "=" in p}
    if points:
        log.warning("failpoints armed: %s (this process will fail on purpose)", sorted(points))


def delay(name: str) -> float:
    """How long to stall at ``name`` (0: not armed); the caller sleeps it."""
    return _delays.get(name, 0.0) if _delays else 0.0


def hit(name: str) -> None:
    """Crash here if ``name`` is armed."""
    if name in _armed:
        log.warning("failpoint %s: exiting now", name)
        os._exit(EXIT_CODE)
