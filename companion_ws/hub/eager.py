"""Start a coroutine eagerly: run it now, in the caller's stack, until it first has to
wait, and only then hand the rest to a Task (what Python 3.12's eager task factory
does, for one call site on 3.11).

Sending a frame to a socket that can take it never waits, so a broadcast to a thousand
idle clients costs a thousand plain calls instead of a thousand Tasks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any


def start_eagerly(coro: Coroutine[Any, Any, None]) -> asyncio.Task[None] | None:
    """Run ``coro`` until it suspends: None if it finished, else the Task running the rest."""
    try:
        waiting_on = coro.send(None)
    except StopIteration:
        return None
    return asyncio.ensure_future(_finish(coro, waiting_on))


async def _finish(coro: Coroutine[Any, Any, None], waiting_on: Any) -> None:
    """Drive a coroutine that suspended on ``waiting_on`` (a future, or None for a bare
    yield) to its end, passing each outcome, cancellation included, back into it."""
    while True:
        try:
            if waiting_on is None:
                await asyncio.sleep(0)
            else:
                # As a Task does with what a coroutine yields: the future was handed
                # over to be waited on, so clear its flag, then wait on it ourselves.
                waiting_on._asyncio_future_blocking = False
                await waiting_on
        except BaseException as exc:
            try:
                waiting_on = coro.throw(exc)
            except StopIteration:
                return
            continue
        try:
            waiting_on = coro.send(None)
        except StopIteration:
            return
