"""Restoring an abandoned task (docs/protocol.md section 13, *Restore*): the state a new
session starts from when it carries on an ended one. [pure]

The session state keeps ``tasks``: ``{"task_id", "name", "status", "started_at",
"ended_at"}``, status ``active``, ``completed`` or ``abandoned``. The task a session
was on when it ended is its last one, still ``active`` or marked ``abandoned`` by the
ending; a restored session has it ``active`` again, with ``restored_from`` naming the
session it comes from.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["UNFINISHED", "restored_state", "tasks_of", "unfinished_task"]

#: The statuses of a task that was under way when its session ended.
UNFINISHED = frozenset({"active", "abandoned"})


def tasks_of(state: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """The state's tasks (what is not a task object is left out)."""
    tasks = state.get("tasks")
    if isinstance(tasks, Sequence) and not isinstance(tasks, str):
        return [t for t in tasks if isinstance(t, Mapping)]
    return []


def unfinished_task(state: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The task the session was on when it ended, if it had not finished it."""
    tasks = tasks_of(state)
    if tasks and tasks[-1].get("status") in UNFINISHED:
        return tasks[-1]
    return None


def restored_state(state: Mapping[str, Any], *, source: str) -> dict[str, Any]:
    """``state`` carried into a new session: everything as it was, and the unfinished
    task (if any) active again, marked ``restored_from: source``."""
    restored: dict[str, Any] = copy.deepcopy(dict(state))
    if unfinished_task(state) is not None:
        tasks = restored["tasks"]
        last = dict(tasks[-1])
        last.update(status="active", ended_at=None, restored_from=source)
        tasks[-1] = last
    return restored
