"""What an operator reads in the hub's log (issue 12): one line per socket outcome
(``accepted``, ``refused``, ``closed``) and per HTTP error, no uvicorn line per socket,
no access line for static files or health checks, ``--log-format json`` lines that
parse, and never a token or a join code. The token travels in the handshake's
subprotocol, and the hub's ``accepted`` line says where it found it (``via``).

Logging does not depend on the database: these run on SQLite only.
"""

from __future__ import annotations

import json
import re
from typing import Any

import httpx
import pytest
import websockets
from websockets.typing import Subprotocol

from companion_ws.client import ClientClosed, CompanionClient
from tests.support.hub import HubFactory, HubProcess, token
from tests.support.ws import connect

_FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')
_LINE = re.compile(r"companion_ws\.(ws|http): (accepted|refused|closed|http_error)( .*)?$")


def events(log: str) -> list[dict[str, Any]]:
    """The hub's ``event key=value ...`` lines, as dicts (``event`` included)."""
    found = []
    for line in log.splitlines():
        match = _LINE.search(line)
        if match is None:
            continue
        fields: dict[str, Any] = {"event": match.group(2)}
        for key, raw in _FIELD.findall(match.group(3) or ""):
            fields[key] = json.loads(raw) if raw.startswith('"') else raw
        found.append(fields)
    return found


def one(found: list[dict[str, Any]], **match: Any) -> dict[str, Any]:
    hits = [e for e in found if all(e.get(k) == v for k, v in match.items())]
    assert len(hits) == 1, (match, found)
    return hits[0]


def logged_hub(hub_factory: HubFactory, **env: str) -> HubProcess:
    hub = hub_factory(env=env)
    hub.access_log = True  # --log-level info, access log on
    return hub.start()


async def test_accepted_refused_and_closed_each_get_one_line(hub_factory: HubFactory) -> None:
    hub = logged_hub(hub_factory)
    alice, bob = token("log-alice"), token("log-bob")
    # The Python client: the token in the subprotocol, a few frames, a normal close.
    client = CompanionClient(hub.ws_url, token=alice, client="agent")
    await client.start()
    sid = client.session_id
    assert sid is not None
    for n in range(3):
        await client.contextual_update(f"update {n}")
    await client.close()
    # 4401: a token that does not verify. 4403: another user's session.
    expired = token("log-alice", ttl=-60)
    with pytest.raises(ClientClosed):
        await CompanionClient(hub.ws_url, token=expired).start()
    with pytest.raises(ClientClosed):
        await CompanionClient(hub.ws_url, token=bob, session_id=sid).start()
    # A join code: accepted once (as a device of alice's), refused the second time.
    async with httpx.AsyncClient(base_url=hub.base_url) as http:
        issued = await http.post(
            f"/sessions/{sid}/join-token", headers={"Authorization": f"Bearer {alice}"}
        )
        code = issued.json()["join_token"]
        phone = CompanionClient(hub.ws_url, token=code)
        await phone.start()
        reconnect = phone.welcome["reconnect_token"]
        with pytest.raises(ClientClosed):
            await CompanionClient(hub.ws_url, token=code).start()
        # wscat's way, ?token= in the URL: still accepted; the line says so.
        wscat = await connect(hub.ws_url, alice, session_id=sid, client="wscat")
        # The hub ends the session: it closes both with 4410.
        ended = await http.delete(f"/sessions/{sid}", headers={"Authorization": f"Bearer {alice}"})
        assert ended.status_code in (200, 204), ended.text
        assert (await wscat.closed())[0] == 4410
        await phone.close()
        # HTTP: a static file and a health check are not access-logged; errors are.
        assert (await http.get("/static/vendor/companion-client/index.js")).status_code == 200
        assert (await http.get("/healthz")).status_code == 200
        assert (await http.get("/sessions", params={"token": alice})).status_code == 401
        assert (await http.get("/no/such/page", params={"token": alice})).status_code == 404
    hub.stop()
    assert hub.log_path is not None
    log = hub.log_path.read_text()
    found = events(log)

    agent = one(found, event="accepted", client="agent")
    assert agent["session"] == sid and agent["user"] == "log-alice" and agent["role"] == "agent"
    assert agent["via"] == "subprotocol" and agent["credential"] == "user"
    assert agent["device"] and agent["conn"] and agent["peer"].startswith("127.0.0.1:")
    closed = one(found, event="closed", conn=agent["conn"])
    assert closed["code"] == "1000" and closed["by"] == "client"
    assert int(closed["frames_in"]) >= 3 and int(closed["frames_out"]) >= 4  # welcome, 3 echoes
    assert int(closed["duration_ms"]) >= 0 and closed["session"] == sid

    refused_401 = [e for e in found if e["event"] == "refused" and e["code"] == "4401"]
    assert len(refused_401) == 2, found  # the expired token, the spent join code
    assert {e.get("credential") for e in refused_401} == {None, "join"}
    assert all("user" not in e for e in refused_401)  # no user: never the join code
    assert all(e["error"] == "unauthorized" and e["reason"] for e in refused_401)
    forbidden = one(found, event="refused", code="4403")
    assert forbidden["user"] == "log-bob" and forbidden["session"] == sid
    assert forbidden["reason"] == "this session belongs to another user"

    device = one(found, event="accepted", credential="device")
    assert device["user"] == "log-alice" and device["role"] == "companion"
    assert device["session"] == sid and device["via"] == "subprotocol"
    by_query = one(found, event="accepted", client="wscat")
    assert by_query["via"] == "query"
    ended_line = one(found, event="closed", conn=by_query["conn"])
    assert ended_line["code"] == "4410" and ended_line["by"] == "server"

    errors = [(e["status"], e["code"], e["path"]) for e in found if e["event"] == "http_error"]
    assert ("401", "unauthorized", "/sessions") in errors
    assert ("404", "not_found", "/no/such/page") in errors

    # uvicorn: no line per socket, no access line for static files or health checks.
    assert '"WebSocket /ws' not in log and "connection open" not in log
    assert "connection closed" not in log
    assert "GET /static/" not in log and "GET /healthz" not in log
    assert '"GET /no/such/page?token=[redacted] HTTP/1.1" 404' in log  # access log is on
    for secret in (alice, bob, expired, code, reconnect):
        assert secret not in log
        assert secret.split(".")[-1] not in log


async def test_json_lines_parse_and_carry_the_fields(hub_factory: HubFactory) -> None:
    hub = logged_hub(hub_factory, COMPANION_LOG_FORMAT="json")
    alice = token("json-alice")
    async with CompanionClient(hub.ws_url, token=alice) as client:
        await client.contextual_update("hello")
    with pytest.raises(ClientClosed):
        await CompanionClient(hub.ws_url, token=token("json-alice", ttl=-60)).start()
    async with httpx.AsyncClient(base_url=hub.base_url) as http:
        assert (await http.get("/sessions", params={"token": alice})).status_code == 401
    hub.stop()
    assert hub.log_path is not None
    log = hub.log_path.read_text()
    lines = [json.loads(line) for line in log.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= line.keys() for line in lines)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", lines[0]["time"])
    by_event = {line.get("event"): line for line in lines if "event" in line}
    accepted = by_event["accepted"]
    assert accepted["logger"] == "companion_ws.ws" and accepted["level"] == "info"
    assert accepted["user"] == "json-alice" and accepted["via"] == "subprotocol"
    assert accepted["message"].startswith("accepted session=")
    closed = by_event["closed"]
    assert closed["code"] == 1000 and closed["frames_in"] >= 1 and closed["frames_out"] >= 2
    assert isinstance(closed["duration_ms"], int)
    assert by_event["refused"]["code"] == 4401
    http_error = by_event["http_error"]
    assert (http_error["status"], http_error["path"]) == (401, "/sessions")
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert access and all("[redacted]" in a["message"] for a in access)
    assert alice not in log and alice.split(".")[-1] not in log


async def test_the_hub_answers_the_subprotocol_never_the_token(hub: HubProcess) -> None:
    """A browser fails a handshake that offered subprotocols and got none back: the hub
    picks ``companion.v1``, and the ``bearer.`` one is never echoed."""
    alice = token("sub-alice")
    offered = [Subprotocol("companion.v1"), Subprotocol(f"bearer.{alice}")]
    async with websockets.connect(f"{hub.ws_url}/ws", subprotocols=offered) as ws:
        assert ws.subprotocol == "companion.v1"
        assert ws.response is not None
        assert ws.response.headers["Sec-WebSocket-Protocol"] == "companion.v1"
        welcome = json.loads(await ws.recv())
        assert welcome["type"] == "session_joined" and welcome["user_id"] == "sub-alice"
    # Without companion.v1 the hub picks none (and still reads the token).
    async with websockets.connect(f"{hub.ws_url}/ws", subprotocols=offered[1:]) as ws:
        assert ws.subprotocol is None
        assert json.loads(await ws.recv())["type"] == "session_joined"
