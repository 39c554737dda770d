"""start_eagerly: run a coroutine now, hand it to a Task only if it has to wait."""

from __future__ import annotations

import asyncio

import pytest

from companion_ws.hub.eager import start_eagerly


async def test_a_coroutine_that_never_waits_finishes_in_the_call() -> None:
    done: list[str] = []

    async def quick() -> None:
        done.append("ran")

    assert start_eagerly(quick()) is None
    assert done == ["ran"]


async def test_a_coroutine_that_waits_goes_on_in_a_task() -> None:
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    seen: list[str] = []

    async def waits() -> None:
        seen.append("before")
        seen.append(await gate)
        await asyncio.sleep(0)  # a bare yield too
        seen.append("after")

    task = start_eagerly(waits())
    assert task is not None and seen == ["before"]
    gate.set_result("value")
    await asyncio.wait_for(task, 5)
    assert seen == ["before", "value", "after"]


async def test_errors_and_cancellation_reach_the_coroutine() -> None:
    gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    caught: list[str] = []

    async def guarded() -> None:
        try:
            await gate
        except ValueError:
            caught.append("value error")
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            caught.append("cancelled")
            raise

    task = start_eagerly(guarded())
    assert task is not None
    gate.set_exception(ValueError("boom"))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert caught == ["value error", "cancelled"]
