"""The echo barrier: a publisher waits until its own event has come back through this
process's subscriber. As with one process, the effects of a client's command then reach
it before the reply to its next one. Bounded: past ECHO_WAIT the clients' gap detection
repairs whatever is late."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from companion_ws.values import Event

log = logging.getLogger("companion_ws.broker.redis")

ECHO_WAIT = 2.0


class EchoBarrier:
    def __init__(self) -> None:
        self._waiting: dict[str, list[tuple[int, str, asyncio.Future[None]]]] = {}

    async def wait(self, event: Event) -> None:
        """Until ``release`` sees this event (or a later one, or another epoch)."""
        sid = event.session_id
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (event.seq, event.epoch, waiter)
        self._waiting.setdefault(sid, []).append(entry)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), ECHO_WAIT)
        except TimeoutError:
            log.warning("%s #%d was not echoed within %.1fs", sid, event.seq, ECHO_WAIT)
        finally:
            entries = self._waiting.get(sid)
            if entries is not None:
                with contextlib.suppress(ValueError):
                    entries.remove(entry)
                if not entries:
                    del self._waiting[sid]

    def release(self, event: Event) -> None:
        """``event`` was handed over: its publisher, and those of earlier ones, go on."""
        for seq, epoch, waiter in self._waiting.get(event.session_id, ()):
            if (seq <= event.seq or epoch != event.epoch) and not waiter.done():
                waiter.set_result(None)
