"""The voice floor (docs/protocol.md section 17) on the in-process hub, SQLite and
PostgreSQL: one holder per session in ``seq`` order, in the welcome and the history,
``agent_control`` to the holder, the roles, and a holder gone for good freeing it.
(Across two processes on Redis: tests/integration/test_voice_floor.py; the broker's
compare-and-set itself: tests/contract/test_broker.py.)"""

from __future__ import annotations

from typing import Any

import pytest

from companion_ws.reach import lan_links
from tests.support.frames import frames_until, is_, new_user
from tests.support.hub import token
from tests.support.inproc import InProcessHub, InProcessWS, inprocess_hub

TAKE = {"type": "take_voice"}
RELEASE = {"type": "release_voice"}


def control(action: str) -> dict[str, Any]:
    return {"type": "agent_control", "action": action}


async def _phone(hub: InProcessHub, owner: str, sid: str, role: str = "companion") -> InProcessWS:
    issued = await hub.http.post(
        f"/sessions/{sid}/join-token",
        json={"role": role},
        headers={"Authorization": f"Bearer {token(owner)}"},
    )
    assert issued.status_code == 201, issued.text
    return await hub.connect(issued.json()["join_token"])


async def _laptop_and_phone(hub: InProcessHub) -> tuple[str, InProcessWS, InProcessWS]:
    owner = new_user()
    laptop = await hub.connect(token(owner))
    phone = await _phone(hub, owner, laptop.welcome["session_id"])
    return owner, laptop, phone


async def test_a_take_moves_the_floor_in_seq_order_and_every_screen_and_the_welcome_see_it(
    shared_inproc: InProcessHub,
) -> None:
    owner, laptop, phone = await _laptop_and_phone(shared_inproc)
    sid = laptop.welcome["session_id"]
    assert laptop.welcome["voice_floor"] is None

    took = await laptop.request(TAKE)
    assert took["type"] == "voice_floor" and took["reason"] == "taken"
    assert took["device_id"] == laptop.welcome["device_id"]
    assert took["connection_id"] == laptop.welcome["connection_id"]
    assert took["previous_device_id"] is None
    handed = await phone.request(TAKE)
    assert handed["device_id"] == phone.welcome["device_id"]
    assert handed["previous_device_id"] == laptop.welcome["device_id"]
    assert handed["seq"] > took["seq"]
    # The laptop sees both, in order: it knows its conversation must end.
    seen = await frames_until(laptop, is_("voice_floor", seq=handed["seq"]))
    assert [f["seq"] for f in seen if f["type"] == "voice_floor"][-1] == handed["seq"]

    late = await shared_inproc.connect(token(owner), session_id=sid)
    assert late.welcome["voice_floor"] == {
        "device_id": phone.welcome["device_id"],
        "connection_id": phone.welcome["connection_id"],
    }
    history = await late.request({"type": "get_history", "after_seq": 0})
    floors = [e for e in history["events"] if e["type"] == "voice_floor"]
    assert [e["seq"] for e in floors] == [took["seq"], handed["seq"]]


async def test_controls_go_to_the_holder_and_end_frees_the_floor(
    shared_inproc: InProcessHub,
) -> None:
    _, laptop, phone = await _laptop_and_phone(shared_inproc)
    refused = await laptop.request(control("interrupt"))
    assert refused["type"] == "error" and refused["code"] == "no_voice", refused

    await phone.request(TAKE)
    sent = await laptop.request(control("interrupt"))
    assert sent["type"] == "agent_control" and sent["action"] == "interrupt"
    assert sent["device_id"] == phone.welcome["device_id"]
    assert sent["sender"] == laptop.welcome["connection_id"]
    heard = await frames_until(phone, is_("agent_control", seq=sent["seq"]))
    assert heard[-1]["action"] == "interrupt"

    ended = await laptop.request(control("end"))
    assert ended["type"] == "agent_control"
    freed = await frames_until(phone, is_("voice_floor", reason="ended"))
    assert freed[-1]["device_id"] is None
    assert freed[-1]["previous_device_id"] == phone.welcome["device_id"]
    again = await laptop.request(control("mute"))
    assert again["type"] == "error" and again["code"] == "no_voice"


async def test_only_the_holder_releases_it(shared_inproc: InProcessHub) -> None:
    _, laptop, phone = await _laptop_and_phone(shared_inproc)
    await laptop.request(TAKE)
    refused = await phone.request(RELEASE)
    assert refused["type"] == "error" and refused["code"] == "no_voice"
    released = await laptop.request(RELEASE)
    assert released["type"] == "voice_floor" and released["reason"] == "released"
    assert released["device_id"] is None and released["connection_id"] is None


@pytest.mark.parametrize(
    ("role", "takes", "steers"),
    [("observer", False, False), ("agent", True, False), ("companion", True, True)],
)
async def test_who_may_take_and_steer(
    shared_inproc: InProcessHub, role: str, takes: bool, steers: bool
) -> None:
    owner = new_user()
    laptop = await shared_inproc.connect(token(owner))
    sid = laptop.welcome["session_id"]
    if role == "agent":
        ws = await shared_inproc.connect(token(owner), session_id=sid, client="agent")
    else:
        ws = await _phone(shared_inproc, owner, sid, role)
    await laptop.request(TAKE)  # a holder, so a control is not answered no_voice
    took = await ws.request(TAKE)
    assert (took["type"] == "voice_floor") is takes, took
    steered = await ws.request(control("mute"))
    assert (steered["type"] == "agent_control") is steers, steered
    for reply, allowed in ((took, takes), (steered, steers)):
        if not allowed:
            assert reply["code"] == "forbidden"


async def test_a_holder_gone_past_its_grace_frees_the_floor_one_back_in_time_keeps_it(
    db_url: str,
) -> None:
    async with inprocess_hub(db_url, presence_ttl=0.3) as hub:
        owner, laptop, phone = await _laptop_and_phone(hub)
        sid = laptop.welcome["session_id"]
        await phone.request(TAKE)
        await phone.close()
        gone = await frames_until(laptop, is_("voice_floor", reason="gone"), timeout=5)
        assert gone[-1]["device_id"] is None
        assert gone[-1]["previous_device_id"] == phone.welcome["device_id"]

        # The laptop takes, drops, and is back (taking again) within its grace.
        await laptop.request(TAKE)
        await laptop.close()
        back = await hub.connect(token(owner), session_id=sid)
        assert back.welcome["voice_floor"]["connection_id"] == laptop.welcome["connection_id"]
        await back.request(TAKE)
        ping = await back.request({"type": "ping"})
        assert ping["type"] == "pong"
        with pytest.raises(TimeoutError):
            await frames_until(back, is_("voice_floor", reason="gone"), timeout=0.8)
        holder = await hub.connect(token(owner), session_id=sid)
        assert holder.welcome["voice_floor"]["connection_id"] == back.welcome["connection_id"]


async def test_a_companion_holding_the_floor_publishes_the_conversation(
    shared_inproc: InProcessHub,
) -> None:
    """The phone's conversation reaches every screen: while it holds the floor a
    companion sends the agent's frames of section 13, and not before or after."""
    _, laptop, phone = await _laptop_and_phone(shared_inproc)
    said = {"type": "transcript", "role": "agent", "message_id": "a1", "text": "Hi", "final": True}
    before = await phone.request(said)
    assert before["type"] == "error" and before["code"] == "forbidden"
    await phone.request(TAKE)
    during = await phone.request(said)
    assert during["type"] == "transcript" and during["sender"] == phone.welcome["connection_id"]
    await frames_until(laptop, is_("transcript", message_id="a1"))
    await laptop.request(TAKE)
    after = await phone.request({"type": "agent_state", "state": "idle"})
    assert after["type"] == "error" and after["code"] == "forbidden"


async def test_a_join_link_asked_for_over_the_loopback_names_the_lan_address(
    shared_inproc: InProcessHub,
) -> None:
    """docs/protocol.md section 17: bound to every interface, the hub never puts the
    loopback in a QR code (a phone would open itself); COMPANION_PUBLIC_URL, when set,
    is used as it is (tests/inproc/test_http_api.py)."""
    owner = new_user()
    laptop = await shared_inproc.connect(token(owner))
    sid = laptop.welcome["session_id"]
    auth = {"Authorization": f"Bearer {token(owner)}"}
    lan_links(shared_inproc.app, "https://192.168.1.20:8000")
    local = await shared_inproc.http.post(
        f"http://127.0.0.1/sessions/{sid}/join-token", headers=auth
    )
    assert local.json()["join_url"].startswith("https://192.168.1.20:8000/join?token=")
    remote = await shared_inproc.http.post(
        f"http://10.0.0.7/sessions/{sid}/join-token", headers=auth
    )
    assert remote.json()["join_url"].startswith("http://10.0.0.7/join?token=")
