"""``POST /sessions/{id}/elevenlabs/conversation`` (docs/protocol.md section 14) on the
in-process hub: nobody but the owner gets a conversation, and a hub not set up for
talking says so. (That the owner's answer and a refused key name no key, in the
answer or the hub's log: tests/integration/test_talk.py.)"""

from __future__ import annotations

import httpx

from tests.support.fake_elevenlabs import TALK_AGENT, TALK_API_KEY, FakeElevenLabs
from tests.support.hub import token
from tests.support.inproc import InProcessHub, inprocess_hub


def _auth(bearer: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {bearer}"}


async def _session(http: httpx.AsyncClient, owner: str) -> str:
    created = await http.post("/sessions", headers=_auth(owner))
    assert created.status_code == 201, created.text
    return str(created.json()["session_id"])


async def test_talking_is_refused_to_anyone_but_the_owner(
    db_url: str, talk_platform: FakeElevenLabs
) -> None:
    async with inprocess_hub(
        db_url,
        elevenlabs_agent_id=TALK_AGENT,
        elevenlabs_api_key=TALK_API_KEY,
        elevenlabs_base_url=talk_platform.base_url,
    ) as hub:
        http = hub.http
        owner = token("alice")
        sid = await _session(http, owner)
        path = f"/sessions/{sid}/elevenlabs/conversation"
        assert (await http.post(path)).json()["error"]["code"] == "unauthorized"
        stranger = await http.post(path, headers=_auth(token("bob")))
        assert stranger.status_code == 403 and stranger.json()["error"]["code"] == "forbidden"
        # A phone joined by QR reads the session over HTTP and nothing more.
        issued = await http.post(f"/sessions/{sid}/join-token", headers=_auth(owner))
        phone = await hub.connect(issued.json()["join_token"])
        try:
            device_token = phone.welcome["reconnect_token"]
            refused = await http.post(path, headers=_auth(device_token))
            assert refused.status_code == 403, refused.text
        finally:
            await phone.close()
        missing = await http.post("/sessions/nope/elevenlabs/conversation", headers=_auth(owner))
        assert missing.status_code == 404
        await http.delete(f"/sessions/{sid}", headers=_auth(owner))
        ended = await http.post(path, headers=_auth(owner))
        assert ended.status_code == 410 and ended.json()["error"]["code"] == "session_ended"
    assert talk_platform.signed_url_requests == []  # nobody refused cost a signed URL


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
