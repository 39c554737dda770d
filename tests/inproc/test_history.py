"""The long history (issue 3, item 3): ``get_history`` and ``GET /sessions/{id}/history``
page through a session's whole past from the database, far beyond the in-memory
window a resume is served from, on the in-process hub (that it outlives the process:
tests/integration/test_history.py)."""

from __future__ import annotations

from tests.support.frames import Frame, history_over_http
from tests.support.hub import token
from tests.support.inproc import InProcessWS, inprocess_hub


async def page_ws(ws: InProcessWS, limit: int) -> tuple[list[Frame], int]:
    """Every event through ``get_history`` pages; (events, number of pages)."""
    events: list[Frame] = []
    after, pages = 0, 0
    while True:
        page = await ws.request({"type": "get_history", "after_seq": after, "limit": limit})
        assert page["type"] == "history", page
        assert len(page["events"]) <= limit and page["after_seq"] == after
        events += page["events"]
        pages += 1
        if not page["has_more"]:
            assert page["next_after_seq"] == page["latest_seq"]
            return events, pages
        assert page["events"], "has_more with an empty page would loop forever"
        after = page["next_after_seq"]


async def test_history_pages_through_more_than_the_window(db_url: str) -> None:
    async with inprocess_hub(db_url, history_size=10) as hub:
        a = await hub.connect(token("alice"))
        sid, epoch = a.welcome["session_id"], a.welcome["epoch"]
        echoes: list[Frame] = []
        for i in range(50):
            if i % 10 == 0:
                echoes.append(
                    await a.request({"type": "update_session_state", "patch": {"step": i}})
                )
            echoes.append(
                await a.request(
                    {"type": "contextual_update", "text": f"event-{i}", "data": {"i": i}}
                )
            )
        latest = echoes[-1]["seq"]

        # the in-memory window is 10 events: a resume from the start cannot be served ...
        await a.send({"type": "resume", "last_seq": 1, "epoch": epoch, "requestId": "old"})
        resync = await a.recv_until(lambda f: f.get("requestId") == "old")
        assert resync["type"] == "resync_required"
        # ... but the history pages through all of it, 7 at a time
        events, pages = await page_ws(a, 7)
        assert [e["seq"] for e in events] == list(range(1, latest + 1))
        assert pages == -(-latest // 7)
        sent = {x["requestId"] for x in echoes}
        assert [e for e in events if e.get("requestId") in sent] == echoes
        assert events[0]["type"] == "client_joined"  # presence is history too

        http = hub.http
        assert await history_over_http(http, sid, token("alice"), 7) == events
        admin = token("root", admin=True)
        assert await history_over_http(http, sid, admin, 7) == events
        stranger = await http.get(
            f"/sessions/{sid}/history", headers={"Authorization": f"Bearer {token('mallory')}"}
        )
        assert stranger.status_code == 403
        anonymous = await http.get(f"/sessions/{sid}/history")
        assert anonymous.status_code == 401
        await a.close()
