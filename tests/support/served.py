"""An ASGI app served by uvicorn in the test's own event loop, on a free port."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import uvicorn

from tests.support.hub import free_port


@contextlib.asynccontextmanager
async def served(app: Callable[..., Awaitable[None]], **config: Any) -> AsyncIterator[int]:
    """``app`` served on 127.0.0.1 (no lifespan: the caller runs it, if any) with the
    uvicorn ``config`` given; yields the port once uvicorn listens, stops it after."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, lifespan="off", log_level="warning", **config
        )
    )
    serving = asyncio.create_task(server.serve())
    while not server.started:
        assert not serving.done(), "uvicorn did not start"
        await asyncio.sleep(0.01)
    try:
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)
