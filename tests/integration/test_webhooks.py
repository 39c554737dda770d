"""ElevenLabs' post-call webhook redelivered after the hub died between its ledger row and
the publish has one effect. The webhooks' rules (server tools, signatures, backend
events): tests/inproc/test_webhooks.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from companion_ws.endpoints.elevenlabs import sign
from tests.support.frames import new_user
from tests.support.hub import HubProcess, token
from tests.support.webhooks import post_call_body

WEBHOOK_SECRET = "wsec_" + "y" * 32


def _auth(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


async def _history(http: httpx.AsyncClient, sid: str, tok: str) -> list[dict[str, Any]]:
    reply = await http.get(f"/sessions/{sid}/history", headers=_auth(tok))
    assert reply.status_code == 200, reply.text
    events: list[dict[str, Any]] = reply.json()["events"]
    return events


# Needs a process: the hub dies (a failpoint's os._exit) and a new one starts on the database.
@pytest.mark.every_store
async def test_a_post_call_redelivered_after_a_crash_between_ledger_and_publish_has_one_effect(
    db_url: str, tmp_path: Path
) -> None:
    """The hub dies (a real ``os._exit``, armed by a failpoint) right after the webhook's
    ledger row and state commit, before anything is published. ElevenLabs got no answer,
    so it redelivers to the restarted hub: the outcome is recorded once, never twice, and
    its broadcasts are published once."""
    env = {"COMPANION_ELEVENLABS_WEBHOOK_SECRET": WEBHOOK_SECRET}
    crashing = HubProcess(
        database_url=db_url,
        env={**env, "COMPANION_FAILPOINTS": "after_ledger"},
        log_path=tmp_path / "hub.log",
    ).start()
    tok = token(new_user())
    async with httpx.AsyncClient(base_url=crashing.base_url, timeout=15) as http:
        created = await http.post("/sessions", headers=_auth(tok))
        sid = created.json()["session_id"]
        body = post_call_body(sid, "conv_crash")
        headers = {"ElevenLabs-Signature": sign(body, WEBHOOK_SECRET)}
        with pytest.raises(httpx.HTTPError):
            await http.post("/elevenlabs/post-call", content=body, headers=headers)
    assert crashing.wait() == 86  # failpoints.EXIT_CODE: it died where it was told to
    hub = HubProcess(
        database_url=db_url, env=env, port=crashing.port, log_path=tmp_path / "hub.log"
    )
    hub.start()
    try:
        async with httpx.AsyncClient(base_url=hub.base_url, timeout=15) as http:
            for _ in range(2):
                again = await http.post("/elevenlabs/post-call", content=body, headers=headers)
                assert again.status_code == 200 and again.json()["duplicate"] is True
            state = (await http.get(f"/sessions/{sid}/state", headers=_auth(tok))).json()
            assert list(state["state"]["conversations"]) == ["conv_crash"]
            assert state["version"] == 1  # one state change: the crashed delivery's
            history = await _history(http, sid, tok)
            # What the crashed delivery's commit owed the screens was published once, by
            # the redelivery (docs/protocol.md section 4).
            said = [e["type"] for e in history if e["type"] != "client_joined"]
            assert said == ["session_state_updated", "contextual_update"], history
            assert [e for e in history if e.get("text") == "conversation_ended"]
    finally:
        hub.stop()
