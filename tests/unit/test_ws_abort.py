"""The slow-consumer cut (4409) cancels a socket's read loop only while it waits for a
frame: never in the middle of a join, a replay or a frame's handling, where a
cancellation could interrupt a database transaction."""

from __future__ import annotations

import asyncio
import contextlib

from companion_ws.endpoints.ws import _Abort


async def test_a_cut_while_the_loop_works_waits_for_the_work_to_end() -> None:
    progress: list[str] = []

    async def loop() -> None:
        task = asyncio.current_task()
        assert task is not None
        abort = _Abort(task)
        abort()  # the outbox gives up while the loop is busy (waiting is False)
        await asyncio.sleep(0.01)  # the "transaction": it must not be cancelled
        progress.append("work finished")
        assert abort.requested  # the read loop ends at its next turn

    await asyncio.wait_for(loop(), 5)
    assert progress == ["work finished"]


async def test_a_cut_while_the_loop_waits_for_a_frame_cancels_it() -> None:
    never = asyncio.Event()
    aborts: list[_Abort] = []

    async def loop() -> None:
        task = asyncio.current_task()
        assert task is not None
        abort = _Abort(task)
        aborts.append(abort)
        abort.waiting = True
        await never.wait()  # receive(): no frame is coming

    task = asyncio.create_task(loop())
    await asyncio.sleep(0)
    aborts[0]()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, 5)
    assert task.cancelled()
