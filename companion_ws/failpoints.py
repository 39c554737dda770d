"""Failpoints: named places where the process can be made to crash on purpose, so that
tests can show what a real crash there leaves behind (as etcd's gofail and TiKV's
fail-rs do). ``COMPANION_FAILPOINTS=after_ledger`` arms one; an armed point ends the
process at once with ``os._exit``, the nearest thing to ``kill -9`` from inside.

Nothing is armed unless the variable is set, and it is read once, at start.
"""

from __future__ import annotations

import logging
import os

__all__ = ["arm", "hit"]

log = logging.getLogger("companion_ws.failpoints")

_armed: frozenset[str] = frozenset()
EXIT_CODE = 86


def arm(names: str | None) -> None:
    """Arm the comma-separated failpoints (None or empty: none)."""
    global _armed
    _armed = frozenset(n.strip() for n in (names or "").split(",") if n.strip())
    if _armed:
        log.warning("failpoints armed: %s (this process will crash on purpose)", sorted(_armed))


def hit(name: str) -> None:
    """Crash here if ``name`` is armed."""
    if name in _armed:
        log.warning("failpoint %s: exiting now", name)
        os._exit(EXIT_CODE)
