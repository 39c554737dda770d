"""``POST /sessions/{id}/elevenlabs/conversation`` (docs/protocol.md section 14) on a real hub,
which fetches the signed URL with the official ``elevenlabs`` SDK from a local
ElevenLabs-protocol server: the owner gets it with the session's capability and the tool
list, the page's CSP admits the conversation's origin, and the API key (a good one or one
ElevenLabs refuses) never leaves the hub, in an answer or in its log. Who may talk, and a
hub not set up for it: tests/inproc/test_talk.py."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import httpx

from tests.support.fake_elevenlabs import (
    CONVERSATION_PATH,
    TALK_AGENT,
    TALK_API_KEY,
    FakeElevenLabs,
)
from tests.support.hub import HubFactory, HubProcess, token, tokens


def _auth(bearer: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {bearer}"}


def _talking_hub(
    hub_factory: HubFactory, talk_platform: FakeElevenLabs, key: str = TALK_API_KEY
) -> HubProcess:
    return hub_factory(
        env={
            "COMPANION_ELEVENLABS_AGENT_ID": TALK_AGENT,
            "COMPANION_ELEVENLABS_API_KEY": key,
            "COMPANION_ELEVENLABS_BASE_URL": talk_platform.base_url,
        }
    ).start()


async def _session(http: httpx.AsyncClient, owner: str) -> str:
    created = await http.post("/sessions", headers=_auth(owner))
    assert created.status_code == 201, created.text
    return str(created.json()["session_id"])


# Needs a process: reads the hub's log (the API key never reaches it).
async def test_the_owner_gets_a_signed_conversation_bound_to_the_session(
    hub_factory: HubFactory, talk_platform: FakeElevenLabs
) -> None:
    hub = _talking_hub(hub_factory, talk_platform)
    owner = token("alice")
    async with httpx.AsyncClient(base_url=hub.base_url, timeout=15) as http:
        sid = await _session(http, owner)
        answer = await http.post(f"/sessions/{sid}/elevenlabs/conversation", headers=_auth(owner))
        page = await http.get("/")
    assert answer.status_code == 200, answer.text
    assert answer.headers["cache-control"] == "no-store"
    body = answer.json()
    # The signed URL came from ElevenLabs' API, asked with the key and the agent.
    url = urlsplit(body["signed_url"])
    assert (url.scheme, url.netloc, url.path) == (
        "ws",
        f"127.0.0.1:{talk_platform.port}",
        CONVERSATION_PATH,
    )
    query = parse_qs(url.query)
    assert query["agent_id"] == [TALK_AGENT] and query["conversation_signature"]
    assert len(talk_platform.signed_url_requests) == 1
    assert talk_platform.signed_url_requests[0]["xi-api-key"] == TALK_API_KEY
    assert body["agent_id"] == TALK_AGENT and body["session_id"] == sid
    # session_id is the session's capability, as server tools and the webhook want it.
    capability = body["dynamic_variables"]["session_id"]
    assert capability != sid
    assert tokens.verify_capability(capability).session_scope == sid
    assert body["capability_expires_at"] > 0
    names = {t["name"]: t for t in body["tools"]}
    assert {"get_shipping_quotes", "create_shipping_label"} <= set(names)
    assert names["get_shipping_quotes"]["response_timeout_secs"] == 20
    # The key went to ElevenLabs only: not to the browser, not into the hub's log.
    assert TALK_API_KEY not in answer.text
    assert hub.log_path is not None and TALK_API_KEY not in hub.log_path.read_text()
    # The page may open the conversation there, and nowhere else.
    csp = page.headers["content-security-policy"]
    assert f"connect-src 'self' ws://127.0.0.1:{talk_platform.port};" in csp
    assert (
        "script-src 'self';" in csp
        and "unsafe-eval" not in csp
        and "blob:" not in (csp.split("connect-src")[1])
    )


# Needs a process: reads the hub's log (the refused key never reaches it).
async def test_a_key_elevenlabs_refuses_is_a_bad_gateway_that_names_no_key(
    hub_factory: HubFactory, talk_platform: FakeElevenLabs
) -> None:
    wrong = "xi-wrong-key-" + "w" * 24
    hub = _talking_hub(hub_factory, talk_platform, key=wrong)
    owner = token("alice")
    async with httpx.AsyncClient(base_url=hub.base_url, timeout=15) as http:
        sid = await _session(http, owner)
        answer = await http.post(f"/sessions/{sid}/elevenlabs/conversation", headers=_auth(owner))
    assert answer.status_code == 502
    error = answer.json()["error"]
    assert error["code"] == "upstream_failed"
    assert "401" in error["message"] and "invalid_api_key" in error["message"]
    assert wrong not in answer.text
    assert hub.log_path is not None and wrong not in hub.log_path.read_text()
