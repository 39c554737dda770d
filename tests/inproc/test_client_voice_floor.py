"""The Python client's voice floor (companion_ws/client/voice.py, docs/protocol.md
section 17): ``voice_floor`` from the welcome and the broadcasts, ``take_voice``,
``release_voice``, ``agent_control``, against the in-process hub served on a local
port by uvicorn in this process (the client dials a real socket)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest

from companion_ws.client import NO_FLOOR, ClientError, CompanionClient
from companion_ws.endpoints.socket_protocol import SocketProtocol
from tests.support.frames import eventually, new_user
from tests.support.hub import token
from tests.support.inproc import InProcessHub
from tests.support.served import served


@contextlib.asynccontextmanager
async def _served(hub: InProcessHub) -> AsyncIterator[str]:
    """The in-process hub's app on a free port (its lifespan already ran)."""
    async with served(hub.app, ws=SocketProtocol) as port:
        yield f"ws://127.0.0.1:{port}"


async def _seen(client: CompanionClient, seq: int) -> None:
    """``client`` has had the voice_floor event ``seq`` (it may have come already)."""
    await eventually(lambda: client.voice_floor["seq"] >= seq, timeout=5)


async def test_the_client_takes_hands_and_releases_the_voice(shared_inproc: InProcessHub) -> None:
    owner = new_user()
    async with _served(shared_inproc) as url:
        laptop = CompanionClient(url, token=token(owner), client="ui")
        await laptop.start()
        sid = laptop.session_id
        issued = await shared_inproc.http.post(
            f"/sessions/{sid}/join-token",
            json={"role": "companion"},
            headers={"Authorization": f"Bearer {token(owner)}"},
        )
        phone = CompanionClient(url, token=issued.json()["join_token"], client="ui")
        await phone.start()
        try:
            # Each as of its welcome's seq (the hub reads the floor after that seq).
            for screen in (laptop, phone):
                assert screen.voice_floor == {**NO_FLOOR, "seq": screen.welcome["seq"]}
            with pytest.raises(ClientError) as refused:
                await laptop.agent_control("interrupt")  # nobody holds it
            assert refused.value.code == "no_voice"

            took = await laptop.take_voice()
            assert took["type"] == "voice_floor" and took["reason"] == "taken"
            mine = {"device_id": laptop.welcome["device_id"], "connection_id": laptop.connection_id}
            assert laptop.voice_floor == {"holder": mine, "mine": True, "seq": took["seq"]}
            await _seen(phone, took["seq"])
            assert phone.voice_floor == {"holder": mine, "mine": False, "seq": took["seq"]}

            control = await phone.agent_control("mute")  # a companion steers the holder
            assert (control["action"], control["device_id"]) == ("mute", mine["device_id"])
            with pytest.raises(ValueError):
                await phone.agent_control("louder")

            handed = await phone.take_voice()
            assert handed["previous_device_id"] == mine["device_id"]
            await _seen(laptop, handed["seq"])
            assert phone.voice_floor["mine"] and not laptop.voice_floor["mine"]
            assert laptop.voice_floor["holder"] == phone.voice_floor["holder"]
            with pytest.raises(ClientError) as not_held:
                await laptop.release_voice()
            assert not_held.value.code == "no_voice"

            # A screen that comes now reads the holder from its welcome.
            late = CompanionClient(url, token=token(owner), session_id=sid, client="ui")
            await late.start()
            seq = late.welcome["seq"]
            assert seq >= handed["seq"]
            assert late.voice_floor == {**phone.voice_floor, "mine": False, "seq": seq}
            await late.close()

            freed = await phone.release_voice()
            assert freed["device_id"] is None and freed["reason"] == "released"
            await _seen(laptop, freed["seq"])
            assert laptop.voice_floor == phone.voice_floor == {**NO_FLOOR, "seq": freed["seq"]}
        finally:
            await phone.close()
            await laptop.close()
