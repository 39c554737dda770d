"""One size limit and one depth limit for every door (docs/protocol.md section 4, v1.2), over
gRPC on a real hub: an event whose frame would be over ``COMPANION_MAX_EVENT_BYTES`` is
``RESOURCE_EXHAUSTED`` and reaches no screen; a state change whose broadcast would be is
refused before its commit; JSON deeper than 64 levels is ``INVALID_ARGUMENT``. Every test
here is kept as a subprocess test because gRPC needs a real port. (The socket, HTTP and
tool cases run on the in-process hub: tests/inproc/test_event_limits.py.)"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import httpx
import pytest

from companion_ws.grpc.v1 import companion_pb2 as pb
from tests.support.backends import bearer, new_session, stub
from tests.support.hub import HubProcess, create_pg_database, drop_pg_database, free_port, token
from tests.support.ws import WS, connect

OVER = "x" * (100 * 1024)


def _deep(levels: int) -> Any:
    """``levels`` + 1 objects, each inside the next."""
    value: Any = {}
    for _ in range(levels):
        value = {"a": value}
    return value


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def doors(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[HubProcess, int]]:
    """A hub with its defaults and gRPC on, on each database."""
    tmp = tmp_path_factory.mktemp("doors")
    url = f"sqlite+aiosqlite:///{tmp / 'hub.db'}"
    if request.param == "postgres":
        url = create_pg_database()
    port = free_port()
    hub = HubProcess(
        database_url=url, env={"COMPANION_GRPC_PORT": str(port)}, log_path=tmp / "hub.log"
    ).start()
    try:
        yield hub, port
    finally:
        hub.stop()
        if request.param == "postgres":
            drop_pg_database(url)


@pytest.fixture
async def api(doors: tuple[HubProcess, int]) -> AsyncIterator[Any]:
    channel, client = stub(doors[1])
    try:
        yield client
    finally:
        await channel.close()


async def _status(call: Any) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value.code(), str(info.value.details())


async def _next_update(screen: WS, timeout: float = 10.0) -> dict[str, Any]:
    """The next ``contextual_update`` or state change a screen receives."""
    kinds = ("contextual_update", "session_state_updated")
    return await screen.recv_until(lambda fr: fr.get("type") in kinds, timeout)


async def _marker(hub: HubProcess, sid: str) -> str:
    """Publish a small event over HTTP; its text."""
    text = f"marker-{uuid.uuid4().hex[:6]}"
    async with httpx.AsyncClient(base_url=hub.base_url, timeout=10) as http:
        r = await http.post(
            f"/sessions/{sid}/events",
            json={"text": text},
            headers={"Authorization": f"Bearer {token('alice')}"},
        )
    assert r.status_code == 201, r.text
    return text


async def _version(hub: HubProcess, sid: str) -> int:
    async with httpx.AsyncClient(base_url=hub.base_url, timeout=10) as http:
        r = await http.get(
            f"/sessions/{sid}/state", headers={"Authorization": f"Bearer {token('alice')}"}
        )
    assert r.status_code == 200, r.text
    version: int = r.json()["version"]
    return version


# ---------------------------------------------------------------- gRPC


# Kept as a subprocess test: gRPC needs a real port.
async def test_grpc_publish_over_the_event_limit_is_resource_exhausted_and_reaches_no_screen(
    api: Any, doors: tuple[HubProcess, int]
) -> None:
    hub = doors[0]
    sid = await new_session(hub)
    screen = await connect(hub.ws_url, token("alice"), session_id=sid)
    big = pb.PublishRequest(
        session_id=sid, type="contextual_update", data_json=json.dumps({"text": OVER})
    )
    code, details = await _status(api.Publish(big, metadata=bearer()))
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED, details
    assert "COMPANION_MAX_EVENT_BYTES" in details
    # A request over COMPANION_MAX_BODY_BYTES (1 MiB) is not even received whole.
    huge = pb.PublishRequest(
        session_id=sid, type="contextual_update", data_json=json.dumps({"text": "y" * 2**21})
    )
    code, details = await _status(api.Publish(huge, metadata=bearer()))
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED, details
    text = await _marker(hub, sid)
    assert (await _next_update(screen))["text"] == text  # nothing came before it
    await screen.close()


# Kept as a subprocess test: gRPC needs a real port.
async def test_grpc_json_deeper_than_64_levels_is_invalid_argument(
    api: Any, doors: tuple[HubProcess, int]
) -> None:
    hub = doors[0]
    sid = await new_session(hub)
    deep = json.dumps({"text": "deep", "data": _deep(900)})
    publish = pb.PublishRequest(session_id=sid, type="contextual_update", data_json=deep)
    code, details = await _status(api.Publish(publish, metadata=bearer()))
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "nested" in details, details
    update = pb.UpdateStateRequest(session_id=sid, patch_json=json.dumps(_deep(900)))
    code, details = await _status(api.UpdateState(update, metadata=bearer()))
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "nested" in details, details
    call = pb.ToolRequest(
        session_id=sid,
        tool_id="get_shipping_quotes",
        tool_call_id=uuid.uuid4().hex,
        parameters={"from_zip": json.dumps(_deep(900))},
    )
    code, details = await _status(api.CallTool(call, metadata=bearer()))
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "nested" in details, details
    assert await _version(hub, sid) == 0
    # 64 levels in all is still fine: the message is the first, ``data`` the second.
    fine = json.dumps({"text": "ok", "data": _deep(62)})
    ok = await api.Publish(
        pb.PublishRequest(session_id=sid, type="contextual_update", data_json=fine),
        metadata=bearer(),
    )
    assert ok.seq >= 1


# Kept as a subprocess test: gRPC needs a real port.
async def test_grpc_state_change_whose_broadcast_is_over_the_limit_is_refused_uncommitted(
    api: Any, doors: tuple[HubProcess, int]
) -> None:
    hub = doors[0]
    sid = await new_session(hub)
    screen = await connect(hub.ws_url, token("alice"), session_id=sid)
    # The state may hold 256 KiB (COMPANION_MAX_STATE_BYTES); one change's broadcast
    # may not be over the event limit.
    update = pb.UpdateStateRequest(session_id=sid, patch_json=json.dumps({"blob": OVER}))
    code, details = await _status(api.UpdateState(update, metadata=bearer()))
    assert code is grpc.StatusCode.RESOURCE_EXHAUSTED, details
    assert await _version(hub, sid) == 0
    text = await _marker(hub, sid)
    assert (await _next_update(screen))["text"] == text
    await screen.close()


# Kept as a subprocess test: gRPC needs a real port.
async def test_grpc_a_key_reused_for_a_different_message_is_invalid_argument(
    api: Any, doors: tuple[HubProcess, int]
) -> None:
    sid = await new_session(doors[0])

    def publish(text: str, correlation_id: str) -> pb.PublishRequest:
        return pb.PublishRequest(
            session_id=sid,
            type="contextual_update",
            data_json=json.dumps({"text": text}),
            idempotency_key="k",
            correlation_id=correlation_id,
        )

    first = await api.Publish(publish("pay 10", "a"), metadata=bearer())
    again = await api.Publish(publish("pay 10", "b"), metadata=bearer())  # the same message
    assert (again.seq, again.duplicate) == (first.seq, True)
    code, details = await _status(api.Publish(publish("pay 1000", "c"), metadata=bearer()))
    assert code is grpc.StatusCode.INVALID_ARGUMENT and "different message" in details, details
