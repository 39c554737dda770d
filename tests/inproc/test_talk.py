"""``POST /sessions/{id}/elevenlabs/conversation`` (docs/protocol.md section 14) on the
in-process hub: nobody but the owner (and a companion device, section 17) gets a
conversation, and a hub not set up for
talking says so. (That the owner's answer and a refused key name no key, in the
answer or the hub's log: tests/integration/test_talk.py.)"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

import httpx

from tests.support.fake_elevenlabs import TALK_AGENT, TALK_API_KEY, FakeElevenLabs
from tests.support.hub import token, tokens
from tests.support.inproc import InProcessHub, inprocess_hub


def _auth(bearer: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {bearer}"}


async def _session(http: httpx.AsyncClient, owner: str) -> str:
    created = await http.post("/sessions", headers=_auth(owner))
    assert created.status_code == 201, created.text
    return str(created.json()["session_id"])


def _talking_hub(
    db_url: str, platform: FakeElevenLabs
) -> AbstractAsyncContextManager[InProcessHub]:
    """A hub set up for talking: its ElevenLabs agent on ``platform``."""
    return inprocess_hub(
        db_url,
        elevenlabs_agent_id=TALK_AGENT,
        elevenlabs_api_key=TALK_API_KEY,
        elevenlabs_base_url=platform.base_url,
    )


async def test_talking_is_refused_to_anyone_but_the_owner_and_companions(
    db_url: str, talk_platform: FakeElevenLabs
) -> None:
    async with _talking_hub(db_url, talk_platform) as hub:
        http = hub.http
        owner = token("alice")
        sid = await _session(http, owner)
        path = f"/sessions/{sid}/elevenlabs/conversation"
        assert (await http.post(path)).json()["error"]["code"] == "unauthorized"
        stranger = await http.post(path, headers=_auth(token("bob")))
        assert stranger.status_code == 403 and stranger.json()["error"]["code"] == "forbidden"
        # A screen joined as an observer reads the session over HTTP and nothing more.
        issued = await http.post(
            f"/sessions/{sid}/join-token", json={"role": "observer"}, headers=_auth(owner)
        )
        tv = await hub.connect(issued.json()["join_token"])
        try:
            refused = await http.post(path, headers=_auth(tv.welcome["reconnect_token"]))
            assert refused.status_code == 403, refused.text
        finally:
            await tv.close()
        missing = await http.post("/sessions/nope/elevenlabs/conversation", headers=_auth(owner))
        assert missing.status_code == 404
        await http.delete(f"/sessions/{sid}", headers=_auth(owner))
        ended = await http.post(path, headers=_auth(owner))
        assert ended.status_code == 410 and ended.json()["error"]["code"] == "session_ended"
    assert talk_platform.signed_url_requests == []  # nobody refused cost a signed URL


async def test_a_companion_device_talks_the_voice_follows_the_user(
    db_url: str, talk_platform: FakeElevenLabs
) -> None:
    """docs/protocol.md section 17: a phone joined as a companion signs its own
    conversation, in the owner's name (its capability is the owner's agent role)."""
    async with _talking_hub(db_url, talk_platform) as hub:
        owner = token("alice")
        sid = await _session(hub.http, owner)
        issued = await hub.http.post(f"/sessions/{sid}/join-token", headers=_auth(owner))
        phone = await hub.connect(issued.json()["join_token"])
        signed = await hub.http.post(
            f"/sessions/{sid}/elevenlabs/conversation",
            headers=_auth(phone.welcome["reconnect_token"]),
        )
        assert signed.status_code == 200, signed.text
        capability = signed.json()["dynamic_variables"]["session_id"]
        assert tokens.verify_capability(capability).session_scope == sid
        assert len(talk_platform.signed_url_requests) == 1
        await phone.close()


async def test_a_hub_not_set_up_for_talking_says_so(inproc: InProcessHub) -> None:
    owner = token("alice")
    http = inproc.http
    sid = await _session(http, owner)
    answer = await http.post(f"/sessions/{sid}/elevenlabs/conversation", headers=_auth(owner))
    page = await http.get("/")
    assert answer.status_code == 503
    error = answer.json()["error"]
    assert error["code"] == "not_configured"
    assert "COMPANION_ELEVENLABS_API_KEY" in error["message"]
    assert "connect-src 'self';" in page.headers["content-security-policy"]
