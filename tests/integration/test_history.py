"""The long history (issue 3, item 3) outlives the hub's process: after a restart
``GET /sessions/{id}/history`` still pages through a session's whole past, far beyond
the in-memory window. The paging rules: tests/inproc/test_history.py."""

from __future__ import annotations

import httpx
import pytest

from tests.support.frames import Frame, history_over_http
from tests.support.hub import HubFactory, token
from tests.support.ws import connect


# Needs a process: the hub is restarted (SIGTERM, then a new process on the same database).
@pytest.mark.every_store
async def test_the_long_history_outlives_the_process(hub_factory: HubFactory) -> None:
    hub = hub_factory(env={"COMPANION_HISTORY_SIZE": "10"}).start()
    a = await connect(hub.ws_url, token("alice"))
    sid = a.welcome["session_id"]
    echoes: list[Frame] = []
    for i in range(50):
        if i % 10 == 0:
            echoes.append(await a.request({"type": "update_session_state", "patch": {"step": i}}))
        echoes.append(
            await a.request({"type": "contextual_update", "text": f"event-{i}", "data": {"i": i}})
        )
    latest = echoes[-1]["seq"]

    async with httpx.AsyncClient(base_url=hub.base_url) as http:
        events = await history_over_http(http, sid, token("alice"), 7)
        assert [e["seq"] for e in events] == list(range(1, latest + 1))
        await a.close()

        hub.restart()
        after_restart = await history_over_http(http, sid, token("alice"), 7)
    assert after_restart[: len(events)] == events
    assert [e["type"] for e in after_restart[len(events) :]] == ["client_left"]
