"""The gRPC API (docs/protocol.md section 15) against a real hub: every call, its rules
(owner, admin, service) and its status codes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest

from companion_ws.grpc.v1 import companion_pb2 as pb
from tests.support.backends import bearer, grpc_api, new_session, status_of
from tests.support.backends import grpc_hub as backend_grpc_hub
from tests.support.hub import HubProcess, token
from tests.support.ws import connect


@pytest.fixture(scope="module")
def grpc_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[HubProcess, int]]:
    with backend_grpc_hub(tmp_path_factory.mktemp("grpc"), {"COMPANION_HISTORY_SIZE": "20"}) as hub:
        yield hub


@pytest.fixture
async def api(grpc_hub: tuple[HubProcess, int]) -> AsyncIterator[Any]:
    async with grpc_api(grpc_hub[1]) as client:
        yield client


def _update(sid: str, text: str, **kw: Any) -> pb.PublishRequest:
    return pb.PublishRequest(
        session_id=sid, type="contextual_update", data_json=json.dumps({"text": text}), **kw
    )


async def test_publish_answers_the_seq_and_reaches_sockets(
    api: Any, grpc_hub: tuple[HubProcess, int]
) -> None:
    hub = grpc_hub[0]
    sid = await new_session(hub)
    screen = await connect(hub.ws_url, token("alice"), session_id=sid)
    first = await api.Publish(_update(sid, "hello", correlation_id="c1"), metadata=bearer())
    frame = await screen.recv_type("contextual_update")
    assert frame["seq"] == first.seq and frame["requestId"] == "c1" and frame["text"] == "hello"
    assert first.epoch == screen.welcome["epoch"] and not first.duplicate
    step = pb.PublishRequest(
        session_id=sid,
        type="step",
        data_json=json.dumps({"step_id": "s", "name": "tool execution", "status": "done"}),
    )
    by_service = await api.Publish(step, metadata=bearer("svc", service=True))
    assert (await screen.recv_type("step"))["seq"] == by_service.seq
    keyed = _update(sid, "once", idempotency_key="k")
    a = await api.Publish(keyed, metadata=bearer("root", admin=True))
    b = await api.Publish(keyed, metadata=bearer())
    assert (a.seq, a.duplicate, b.seq, b.duplicate) == (a.seq, False, a.seq, True)
    await screen.close()


async def test_publish_status_codes(api: Any, grpc_hub: tuple[HubProcess, int]) -> None:
    sid = await new_session(grpc_hub[0])
    assert await status_of(api.Publish(_update(sid, "x"))) == grpc.StatusCode.UNAUTHENTICATED
    bad_token = (("authorization", "Bearer nope.nope.nope"),)
    assert await status_of(api.Publish(_update(sid, "x"), metadata=bad_token)) == (
        grpc.StatusCode.UNAUTHENTICATED
    )
    assert await status_of(api.Publish(_update(sid, "x"), metadata=bearer("mallory"))) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    assert await status_of(api.Publish(_update("nope", "x"), metadata=bearer())) == (
        grpc.StatusCode.NOT_FOUND
    )
    wrong = pb.PublishRequest(session_id=sid, type="dance", data_json="{}")
    assert (
        await status_of(api.Publish(wrong, metadata=bearer())) == grpc.StatusCode.INVALID_ARGUMENT
    )
    junk = pb.PublishRequest(session_id=sid, type="contextual_update", data_json="{")
    assert await status_of(api.Publish(junk, metadata=bearer())) == grpc.StatusCode.INVALID_ARGUMENT


async def test_get_and_update_state_with_expected_version(
    api: Any, grpc_hub: tuple[HubProcess, int]
) -> None:
    hub = grpc_hub[0]
    sid = await new_session(hub)
    screen = await connect(hub.ws_url, token("alice"), session_id=sid)
    state = await api.GetState(pb.GetStateRequest(session_id=sid), metadata=bearer())
    assert (state.version, json.loads(state.state_json)) == (0, {})
    patch = pb.UpdateStateRequest(
        session_id=sid, patch_json=json.dumps({"a": 1}), expected_version=0
    )
    updated = await api.UpdateState(patch, metadata=bearer("svc", service=True))
    assert updated.version == 1 and json.loads(updated.state_json) == {"a": 1}
    frame = await screen.recv_type("session_state_updated")
    assert frame["version"] == 1 and frame["patch"] == {"a": 1}
    assert await status_of(api.UpdateState(patch, metadata=bearer())) == grpc.StatusCode.ABORTED
    loose = pb.UpdateStateRequest(session_id=sid, patch_json=json.dumps({"b": 2}))
    assert (await api.UpdateState(loose, metadata=bearer())).version == 2
    not_object = pb.UpdateStateRequest(session_id=sid, patch_json="[1]")
    assert await status_of(api.UpdateState(not_object, metadata=bearer())) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    assert await status_of(
        api.GetState(pb.GetStateRequest(session_id=sid), metadata=bearer("mallory"))
    ) == (grpc.StatusCode.PERMISSION_DENIED)
    await screen.close()


async def test_subscribe_replays_after_seq_then_goes_live(
    api: Any, grpc_hub: tuple[HubProcess, int]
) -> None:
    sid = await new_session(grpc_hub[0])
    seqs = [(await api.Publish(_update(sid, f"t{i}"), metadata=bearer())).seq for i in range(5)]
    call = api.Subscribe(pb.SubscribeRequest(session_id=sid, after_seq=seqs[1]), metadata=bearer())
    got = [await call.read() for _ in range(3)]
    assert [e.seq for e in got] == seqs[2:]
    frame = json.loads(got[0].frame_json)
    assert frame["seq"] == seqs[2] and frame["text"] == "t2" and got[0].type == "contextual_update"
    live = await api.Publish(_update(sid, "live"), metadata=bearer())
    event = await call.read()
    assert event.seq == live.seq and json.loads(event.frame_json)["text"] == "live"
    call.cancel()


async def test_subscribe_too_old_is_out_of_range(
    api: Any, grpc_hub: tuple[HubProcess, int]
) -> None:
    sid = await new_session(grpc_hub[0])
    for i in range(25):  # the hub keeps 20
        await api.Publish(_update(sid, f"t{i}"), metadata=bearer())

    async def first(after: int) -> grpc.StatusCode:
        call = api.Subscribe(
            pb.SubscribeRequest(session_id=sid, after_seq=after), metadata=bearer()
        )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await call.read()
        code: grpc.StatusCode = info.value.code()
        return code

    assert await first(1) == grpc.StatusCode.OUT_OF_RANGE
    assert await first(999) == grpc.StatusCode.OUT_OF_RANGE
    call = api.Subscribe(pb.SubscribeRequest(session_id=sid, after_seq=10), metadata=bearer())
    assert (await call.read()).seq == 11
    call.cancel()
    nobody = api.Subscribe(pb.SubscribeRequest(session_id=sid), metadata=bearer("mallory"))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await nobody.read()
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_call_tool_runs_once_per_tool_call_id(
    api: Any, grpc_hub: tuple[HubProcess, int]
) -> None:
    hub = grpc_hub[0]
    sid = await new_session(hub)
    screen = await connect(hub.ws_url, token("alice"), session_id=sid)
    request = pb.ToolRequest(
        tool_id="get_shipping_quotes",
        operation="quote",
        parameters={"from_zip": '"90210"', "to_zip": '"10001"', "weight": "5"},
        session_id=sid,
        tool_call_id="t1",
    )
    first = await api.CallTool(request, metadata=bearer("svc", service=True))
    assert first.success and not first.replayed and json.loads(first.result)
    assert (await screen.recv_type("contextual_update"))["text"] == "quote_ready"
    again = await api.CallTool(request, metadata=bearer())
    assert again.replayed and again.result == first.result
    bad = pb.ToolRequest(
        tool_id="get_shipping_quotes",
        parameters_json=json.dumps({"from_zip": "1", "to_zip": "10001", "weight": 5}),
        session_id=sid,
        tool_call_id="t2",
    )
    failed = await api.CallTool(bad, metadata=bearer())
    assert not failed.success and "from_zip" in failed.error
    unknown = pb.ToolRequest(tool_id="nope", session_id=sid, tool_call_id="t3")
    assert not (await api.CallTool(unknown, metadata=bearer())).success
    no_id = pb.ToolRequest(tool_id="get_shipping_quotes", session_id=sid)
    assert await status_of(api.CallTool(no_id, metadata=bearer())) == (
        grpc.StatusCode.INVALID_ARGUMENT
    )
    await screen.close()


async def test_stream_task_is_seen_by_sockets_as_it_streams(
    api: Any, grpc_hub: tuple[HubProcess, int]
) -> None:
    hub = grpc_hub[0]
    sid = await new_session(hub)
    screen = await connect(hub.ws_url, token("alice"), session_id=sid)
    parts = ["Your ", "label ", "is ready."]

    async def chunks() -> AsyncIterator[pb.TaskChunk]:
        for i, part in enumerate(parts):
            yield pb.TaskChunk(
                task_id="task-1", content=part, is_final=i == len(parts) - 1, session_id=sid
            )

    answer = await api.StreamTask(chunks(), metadata=bearer("svc", service=True))
    assert answer.success and answer.output == "".join(parts) and answer.task_id == "task-1"
    texts = []
    for _ in parts:
        frame = await screen.recv_type("transcript")
        assert frame["role"] == "agent" and frame["message_id"] == "task-1"
        texts.append((frame["text"], frame["final"]))
    assert texts == [("Your ", False), ("Your label ", False), ("Your label is ready.", True)]

    async def strangers() -> AsyncIterator[pb.TaskChunk]:
        yield pb.TaskChunk(task_id="t", content="x", session_id=sid)

    assert await status_of(api.StreamTask(strangers(), metadata=bearer("mallory"))) == (
        grpc.StatusCode.PERMISSION_DENIED
    )
    await screen.close()


def test_generated_code_matches_the_proto(tmp_path: Path) -> None:
    """The committed proto is the protocol's; its descriptor is the generated one's."""
    shared = Path(__file__).resolve().parents[2] / "companion_ws" / "grpc" / "companion.proto"
    assert "package companion.v1;" in shared.read_text()
    names = [s.name for s in pb.DESCRIPTOR.services_by_name["Sessions"].methods]
    assert names == ["Publish", "GetState", "UpdateState", "Subscribe", "CallTool", "StreamTask"]
