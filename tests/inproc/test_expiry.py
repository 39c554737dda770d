"""Inactive sessions expire (COMPANION_SESSION_TTL), on the in-process hub: the node's sweep
ends them with ``session_ended`` + 4410, and their id then opens a new session with
``reason: expired``. The sweep runs in the node, on the test's own event loop: it needs
no wire or process."""

from __future__ import annotations

from tests.support.frames import bearer, new_user
from tests.support.hub import token
from tests.support.inproc import inprocess_hub


async def test_an_idle_session_is_ended_by_the_sweep_and_its_id_replaced(db_url: str) -> None:
    async with inprocess_hub(db_url, session_ttl=1.0, sweep_interval=0.2) as hub:
        user = new_user()
        a = await hub.connect(token(user))
        sid = a.welcome["session_id"]
        b = await hub.connect(token(user), session_id=sid)
        for ws in (a, b):
            # Idle: nobody sends anything. The TTL is 1 s; allow a loaded machine plenty.
            ended = await ws.recv_type("session_ended", timeout=15)
            assert ended["session_id"] == sid and ended["reason"] == "expired"
            assert isinstance(ended["seq"], int)
            assert (await ws.closed())[0] == 4410

        info = await hub.http.get(f"/sessions/{sid}", headers=bearer(user))
        assert info.json()["active"] is False and info.json()["end_reason"] == "expired"

        for path_session in (False, True):
            again = await hub.connect(token(user), session_id=sid, path_session=path_session)
            w = again.welcome
            assert w["created"] is True and w["session_id"] != sid
            assert w["requested_session_id"] == sid and w["reason"] == "expired"
            await again.close()


async def test_activity_keeps_a_session_alive(db_url: str) -> None:
    """A session in use is not swept while an idle one beside it is."""
    async with inprocess_hub(db_url, session_ttl=3.0, sweep_interval=0.2) as hub:
        user = new_user()
        busy = await hub.connect(token(user))
        idle = await hub.connect(token(user))
        # Keep `busy` active (well within its TTL) until `idle` has been swept.
        for _ in range(200):
            reply = await busy.request({"type": "update_session_state", "key": "t", "value": 1})
            assert reply["type"] == "session_state_updated", reply
            try:
                ended = await idle.recv_type("session_ended", timeout=0.3)
            except TimeoutError:
                continue
            assert ended["reason"] == "expired"
            break
        else:
            raise AssertionError("the idle session was never swept")
        assert (await idle.closed())[0] == 4410
        pong = await busy.request({"type": "ping"})
        assert pong["type"] == "pong"
        await busy.close()
