"""The in-process harness itself: the real app's frames and HTTP answers, no process."""

from __future__ import annotations

from tests.support.hub import token
from tests.support.inproc import InProcessHub


async def test_two_screens_share_one_order_and_a_stranger_is_refused(inproc: InProcessHub) -> None:
    laptop = await inproc.connect(token("alice"), client="ui")
    sid = laptop.welcome["session_id"]
    phone = await inproc.connect(token("alice"), session_id=sid, client="ui")
    echo = await laptop.request({"type": "contextual_update", "text": "hi", "data": {}})
    seen = await phone.recv_type("contextual_update")
    assert echo["seq"] == seen["seq"] and seen["text"] == "hi"

    stranger = await inproc.connect(token("bob"), session_id=sid, expect_welcome=False)
    error = await stranger.recv()
    assert error["type"] == "error" and error["code"] == "forbidden"
    assert (await stranger.closed())[0] == 4403

    answer = await inproc.http.get(
        f"/sessions/{sid}", headers={"authorization": f"Bearer {token('alice')}"}
    )
    assert answer.status_code == 200 and answer.json()["seq"] == echo["seq"]
