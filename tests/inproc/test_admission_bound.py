"""A reconnect storm queues at admission (docs/scaling.md, "The reconnect storm"): at
most ``JOINING`` joins of a process do their broker and database work at once; the
others wait with their socket open, and every one is admitted."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from companion_ws.endpoints.ws import SocketServer
from companion_ws.hub.admission import JOINING
from tests.support.hub import token
from tests.support.inproc import InProcessHub


async def test_a_storm_of_joins_is_admitted_a_bounded_number_at_a_time(
    inproc: InProcessHub, monkeypatch: pytest.MonkeyPatch
) -> None:
    tok = token("storm")
    first = await inproc.connect(tok)
    sid = first.welcome["session_id"]
    # a spy on the admission's own work (the joins' broker and database part): it holds
    # the joins that got that far until the gate opens, and counts them
    server = inproc.app
    assert isinstance(server, SocketServer)
    admission = server.admission
    real = admission.admit
    gate = asyncio.Event()
    inside = peak = 0

    async def admit(*args: Any, **kwargs: Any) -> Any:
        nonlocal inside, peak
        inside += 1
        peak = max(peak, inside)
        try:
            await gate.wait()
            return await real(*args, **kwargs)
        finally:
            inside -= 1

    monkeypatch.setattr(admission, "admit", admit)
    storm = [asyncio.create_task(inproc.connect(tok, session_id=sid)) for _ in range(40)]
    async with asyncio.timeout(10):
        while inside < JOINING:  # noqa: ASYNC110
            await asyncio.sleep(0.01)
    await asyncio.sleep(0.2)  # the others had every chance to get in too
    assert peak == JOINING
    gate.set()
    sockets = await asyncio.gather(*storm)
    assert all(ws.welcome["session_id"] == sid for ws in sockets)
