"""The agent capability is the agent role, never more (docs/protocol.md section 11, v1.2),
over gRPC against a real hub. (Its socket and HTTP cases, on SQLite and PostgreSQL, run on
the in-process hub: tests/inproc/test_capability.py.)"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import grpc
import pytest

from companion_ws.grpc.v1 import companion_pb2 as pb
from tests.support.backends import grpc_api, status_of
from tests.support.backends import grpc_hub as backend_grpc_hub
from tests.support.hub import HubProcess, token
from tests.support.ws import WS, connect


def _user() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


async def _agent(hub: HubProcess, who: str, sid: str, **claims: Any) -> tuple[WS, str]:
    """An agent's connection (``client=agent``) and the capability its welcome carries."""
    ws = await connect(hub.ws_url, token(who, **claims), session_id=sid, client="agent")
    assert ws.welcome["role"] == "agent"
    cap = ws.welcome["agent_capability"]
    assert isinstance(cap, str)
    return ws, cap


# ---------------------------------------------------------------- gRPC


@pytest.fixture(scope="module")
def grpc_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubProcess, int]]:
    with backend_grpc_hub(tmp_path_factory.mktemp("grpc-capability")) as hub:
        yield hub


@pytest.fixture
async def api(grpc_hub: tuple[HubProcess, int]) -> AsyncIterator[Any]:
    async with grpc_api(grpc_hub[1]) as client:
        yield client


def _bearer(tok: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {tok}"),)


# Kept as a subprocess test: gRPC needs a real port.
async def test_over_grpc_the_capability_only_reads_its_session(
    api: Any, grpc_hub: tuple[HubProcess, int]
) -> None:
    hub = grpc_hub[0]
    owner = _user()
    home = await connect(hub.ws_url, token(owner))
    sid = home.welcome["session_id"]
    agent, cap = await _agent(hub, owner, sid)
    reconnect = home.welcome["reconnect_token"]
    for tok in (cap, reconnect):
        state = await api.GetState(pb.GetStateRequest(session_id=sid), metadata=_bearer(tok))
        assert state.session_id == sid
        update = pb.UpdateStateRequest(session_id=sid, patch_json=json.dumps({"a": 1}))
        assert await status_of(api.UpdateState(update, metadata=_bearer(tok))) == (
            grpc.StatusCode.PERMISSION_DENIED
        )
        publish = pb.PublishRequest(
            session_id=sid, type="contextual_update", data_json=json.dumps({"text": "x"})
        )
        assert await status_of(api.Publish(publish, metadata=_bearer(tok))) == (
            grpc.StatusCode.PERMISSION_DENIED
        )
        tool = pb.ToolRequest(session_id=sid, tool_id="echo", tool_call_id=uuid.uuid4().hex)
        assert await status_of(api.CallTool(tool, metadata=_bearer(tok))) == (
            grpc.StatusCode.PERMISSION_DENIED
        )
    # Subscribe reads: the history from the start (the agent's client_joined first).
    watch = api.Subscribe(pb.SubscribeRequest(session_id=sid), metadata=_bearer(cap))
    first = await watch.read()
    assert first.seq == 1
    watch.cancel()
    other = await connect(hub.ws_url, token(owner))
    elsewhere = pb.GetStateRequest(session_id=other.welcome["session_id"])
    assert await status_of(api.GetState(elsewhere, metadata=_bearer(cap))) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    await other.close()
    await home.request({"type": "end_session"})
    assert await status_of(
        api.GetState(pb.GetStateRequest(session_id=sid), metadata=_bearer(cap))
    ) == (grpc.StatusCode.NOT_FOUND)
    await agent.close()
    await home.close()
