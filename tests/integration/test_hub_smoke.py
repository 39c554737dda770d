"""Two clients on one session see each other's updates; a third user cannot get in."""

from __future__ import annotations

from tests.support.hub import HubProcess, token
from tests.support.ws import connect


async def test_two_clients_share_a_session_and_a_stranger_is_refused(hub: HubProcess) -> None:
    a = await connect(hub.ws_url, token("alice"))
    sid = a.welcome["session_id"]
    b = await connect(hub.ws_url, token("alice"), session_id=sid)
    await a.send({"type": "contextual_update", "text": "quote_ready", "data": {"n": 1}})
    got_b = await b.recv_type("contextual_update")
    got_a = await a.recv_type("contextual_update")
    assert got_a == got_b
    assert got_b["text"] == "quote_ready" and got_b["sender"] == a.welcome["connection_id"]

    mallory = await connect(hub.ws_url, token("mallory"), session_id=sid, expect_welcome=False)
    error = await mallory.recv()
    assert error["type"] == "error" and error["code"] == "forbidden"
    assert (await mallory.closed())[0] == 4403
    await a.close()
    await b.close()
