"""Tasks, the seeds' intents (docs/protocol.md section 13): ``state.tasks`` is a list of
``{"task_id", "name", "status", "started_at", "ended_at"}``, status ``active``,
``completed`` or ``abandoned``, times in ms since the epoch.

Each function answers the merge patch that makes the change (``{"tasks": [...]}``, the
whole list: a merge patch replaces a list whole), or None when nothing changes. Pure:
the caller passes the clock and any new id. A ``tasks`` value that is not a list (a
client may write the state) counts as no tasks; entries that are not tasks are kept
as they are and never matched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "ABANDONED",
    "ACTIVE",
    "COMPLETED",
    "TASKS",
    "abandon_tasks",
    "active_task",
    "complete_task",
    "start_task",
    "tasks_of",
    "tool_task_change",
]

TASKS = "tasks"
ACTIVE, COMPLETED, ABANDONED = "active", "completed", "abandoned"

Patch = dict[str, Any]


def tasks_of(state: Mapping[str, Any]) -> list[Any]:
    """The state's task list (a copy), ``[]`` when there is none."""
    value = state.get(TASKS)
    return list(value) if isinstance(value, list) else []


def _is_active(entry: Any, name: str | None = None) -> bool:
    return (
        isinstance(entry, Mapping)
        and entry.get("status") == ACTIVE
        and (name is None or entry.get("name") == name)
    )


def active_task(state: Mapping[str, Any], name: str | None = None) -> Mapping[str, Any] | None:
    """The first active task (of that ``name``, if given), or None."""
    for entry in tasks_of(state):
        if _is_active(entry, name):
            return dict(entry)
    return None


def start_task(state: Mapping[str, Any], name: str, *, task_id: str, now: int) -> Patch | None:
    """A new active task ``name``, unless one of that name is active already."""
    if active_task(state, name) is not None:
        return None
    task = {"task_id": task_id, "name": name, "status": ACTIVE, "started_at": now, "ended_at": None}
    return {TASKS: [*tasks_of(state), task]}


def _end(state: Mapping[str, Any], name: str | None, status: str, now: int) -> Patch | None:
    tasks = tasks_of(state)
    changed = False
    for i, entry in enumerate(tasks):
        if _is_active(entry, name):
            tasks[i] = {**entry, "status": status, "ended_at": now}
            changed = True
    return {TASKS: tasks} if changed else None


def complete_task(state: Mapping[str, Any], name: str, *, now: int) -> Patch | None:
    """The active task ``name`` completed; None when none is active."""
    return _end(state, name, COMPLETED, now)


def abandon_tasks(state: Mapping[str, Any], *, now: int) -> Patch | None:
    """Every active task abandoned (the session ends or expires); None when none is."""
    return _end(state, None, ABANDONED, now)


def tool_task_change(
    state: Mapping[str, Any],
    *,
    starts: str | None,
    completes: str | None,
    task_id: str,
    now: int,
) -> Patch | None:
    """What a tool that declares it ``starts`` and/or ``completes`` a task does to the
    task list when it succeeds (a start first, so a tool may do both)."""
    patch: Patch | None = None
    current: Mapping[str, Any] = state
    if starts is not None:
        patch = start_task(current, starts, task_id=task_id, now=now)
        if patch is not None:
            current = {**current, **patch}
    if completes is not None:
        patch = complete_task(current, completes, now=now) or patch
    return patch
