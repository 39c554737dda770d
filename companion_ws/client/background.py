"""The client's fire-and-forget work (a replay request, a state fetch, a refresh): each
task kept until it is done, its failure logged, all of them cancelled when the client
stops for good."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable
from typing import Any

__all__ = ["Background"]

log = logging.getLogger("companion_ws.client")


class Background:
    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._reap)
        return task

    def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def _reap(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.debug("background work failed: %s", task.exception())
