"""Streams end with their credential (docs/protocol.md sections 4, 11 and 12, v1.2), on real
hubs: a revoked device is refused by every door (gRPC included) and its open AG-UI
stream and gRPC ``Subscribe`` end, on this process and on another; a stream opened with
a short-lived token ends at ``exp`` plus the grace; every stream ends with its
session; and one user holds at most ``COMPANION_MAX_STREAMS_PER_USER`` streams."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from companion_ws.grpc.v1 import companion_pb2 as pb
from tests.support.backends import status_of, stub
from tests.support.cluster import Cluster
from tests.support.hub import HubFactory, HubProcess, free_port, token
from tests.support.ws import connect

#: Generous bounds on waiting for something that should happen within a second or two.
WAIT = 15.0


def _user() -> str:
    return f"u-{uuid.uuid4().hex[:8]}"


def _auth(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


def _metadata(tok: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {tok}"),)


def _grpc_hub(hub_factory: HubFactory, **env: str) -> tuple[HubProcess, int]:
    port = free_port()
    hub = hub_factory(env={"COMPANION_GRPC_PORT": str(port), **env}).start()
    return hub, port


async def _session(hub: HubProcess, owner_token: str) -> str:
    """A session with one event in its history (its owner's socket came and went)."""
    async with httpx.AsyncClient(base_url=hub.base_url, timeout=WAIT) as http:
        made = await http.post("/sessions", headers=_auth(owner_token))
    assert made.status_code == 201, made.text
    sid: str = made.json()["session_id"]
    ws = await connect(hub.ws_url, owner_token, session_id=sid)
    await ws.close()
    return sid


async def _device_token(hub: HubProcess, owner_token: str, sid: str) -> tuple[str, str]:
    """An observer device joined by join code: its token and its id."""
    async with httpx.AsyncClient(base_url=hub.base_url, timeout=WAIT) as http:
        issued = await http.post(
            f"/sessions/{sid}/join-token", json={"role": "observer"}, headers=_auth(owner_token)
        )
    assert issued.status_code == 201, issued.text
    phone = await connect(hub.ws_url, issued.json()["join_token"])
    await phone.close()
    return phone.welcome["reconnect_token"], phone.welcome["device_id"]


async def _revoke(hub: HubProcess, owner_token: str, sid: str, device_id: str) -> None:
    async with httpx.AsyncClient(base_url=hub.base_url, timeout=WAIT) as http:
        revoked = await http.delete(
            f"/sessions/{sid}/devices/{device_id}", headers=_auth(owner_token)
        )
    assert revoked.status_code == 200, revoked.text


class AgUi:
    """An open ``GET /sessions/{id}/ag-ui``: its events, read as they come."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def next(self) -> dict[str, Any] | None:
        """The next event; None when the stream ended."""
        async for line in self._lines:
            if line.startswith("data: "):
                event: dict[str, Any] = json.loads(line[len("data: ") :])
                return event
        return None

    async def last(self, timeout: float = WAIT) -> list[dict[str, Any]]:
        """Every event until the stream ends (within ``timeout``)."""
        events: list[dict[str, Any]] = []
        async with asyncio.timeout(timeout):
            while (event := await self.next()) is not None:
                events.append(event)
        return events


@asynccontextmanager
async def ag_ui(hub: HubProcess, sid: str, tok: str) -> AsyncIterator[httpx.Response]:
    timeout = httpx.Timeout(WAIT, read=None)
    async with (
        httpx.AsyncClient(base_url=hub.base_url, timeout=timeout) as http,
        http.stream("GET", f"/sessions/{sid}/ag-ui", headers=_auth(tok)) as response,
    ):
        yield response


@asynccontextmanager
async def following(hub: HubProcess, sid: str, tok: str) -> AsyncIterator[AgUi]:
    """An AG-UI stream that opened (200) and sent its opening."""
    async with ag_ui(hub, sid, tok) as response:
        assert response.status_code == 200, await response.aread()
        stream = AgUi(response)
        first = await asyncio.wait_for(stream.next(), WAIT)
        assert first is not None and first["type"] == "RUN_STARTED"
        yield stream


async def _subscribed(api: Any, sid: str, tok: str) -> Any:
    """A ``Subscribe`` from the start that has replayed the first event: it is open."""
    call = api.Subscribe(pb.SubscribeRequest(session_id=sid, after_seq=0), metadata=_metadata(tok))
    first = await asyncio.wait_for(call.read(), WAIT)
    assert first.seq == 1
    return call


async def _ended_with(call: Any) -> grpc.StatusCode:
    """Read a ``Subscribe`` to its end: the status it ended with."""
    async with asyncio.timeout(WAIT):
        while True:
            try:
                event = await call.read()
            except grpc.aio.AioRpcError as exc:
                code: grpc.StatusCode = exc.code()
                return code
            if event is grpc.aio.EOF:
                return await call.code()  # type: ignore[no-any-return]


class Chunks:
    """A ``StreamTask``'s request stream, held open until :meth:`finish`."""

    def __init__(self, sid: str) -> None:
        self.sid = sid
        self._done = asyncio.Event()

    async def __aiter__(self) -> AsyncIterator[pb.TaskChunk]:
        yield pb.TaskChunk(task_id="t1", session_id=self.sid, content="Hello")
        await self._done.wait()

    def finish(self) -> None:
        self._done.set()


async def test_a_revoked_device_is_refused_by_grpc_and_its_open_streams_end(
    hub_factory: HubFactory,
) -> None:
    hub, port = _grpc_hub(hub_factory)
    owner = token(_user())
    sid = await _session(hub, owner)
    device, device_id = await _device_token(hub, owner, sid)
    channel, api = stub(port)
    async with channel, following(hub, sid, device) as stream:
        state = await api.GetState(pb.GetStateRequest(session_id=sid), metadata=_metadata(device))
        assert state.session_id == sid  # a device's token reads its session over gRPC
        call = await _subscribed(api, sid, device)
        await _revoke(hub, owner, sid, device_id)
        # Every door refuses the revoked device's token from now on, gRPC included...
        refused = api.GetState(pb.GetStateRequest(session_id=sid), metadata=_metadata(device))
        assert await status_of(refused, WAIT) == grpc.StatusCode.UNAUTHENTICATED
        # ...and its open streams end.
        events = await stream.last()
        assert events[-1]["type"] == "RUN_ERROR" and events[-1]["code"] == "forbidden", events
        assert await _ended_with(call) == grpc.StatusCode.PERMISSION_DENIED
        again = api.Subscribe(pb.SubscribeRequest(session_id=sid), metadata=_metadata(device))
        assert await _ended_with(again) == grpc.StatusCode.UNAUTHENTICATED
        async with ag_ui(hub, sid, device) as response:
            assert response.status_code == 401
        async with httpx.AsyncClient(base_url=hub.base_url, timeout=WAIT) as http:
            assert (
                await http.get(f"/sessions/{sid}/state", headers=_auth(device))
            ).status_code == 401


async def test_streams_opened_with_a_short_lived_token_end_after_its_exp_and_the_grace(
    hub_factory: HubFactory,
) -> None:
    hub, port = _grpc_hub(hub_factory, COMPANION_REFRESH_GRACE="1")
    user = _user()
    sid = await _session(hub, token(user))
    short = token(user, ttl=3)
    chunks = Chunks(sid)
    channel, api = stub(port)
    async with channel, following(hub, sid, short) as stream:
        call = await _subscribed(api, sid, short)
        task = api.StreamTask(chunks.__aiter__(), metadata=_metadata(short))
        try:
            events = await stream.last()
            assert events[-1]["type"] == "RUN_ERROR", events
            assert events[-1]["code"] == "token_expired", events
            assert await _ended_with(call) == grpc.StatusCode.UNAUTHENTICATED
            assert await status_of(task, WAIT) == grpc.StatusCode.UNAUTHENTICATED
        finally:
            chunks.finish()
        # A stream on a long-lived token of the same user goes on.
        async with following(hub, sid, token(user)):
            pass


async def test_every_stream_ends_when_its_session_ends(hub_factory: HubFactory) -> None:
    hub, port = _grpc_hub(hub_factory)
    owner = token(_user())
    sid = await _session(hub, owner)
    chunks = Chunks(sid)
    channel, api = stub(port)
    async with channel, following(hub, sid, owner) as stream:
        call = await _subscribed(api, sid, owner)
        # The screen joins first: a join replays nothing, so a transcript published
        # before its welcome would never reach it.
        screen = await connect(hub.ws_url, owner, session_id=sid)
        task = api.StreamTask(chunks.__aiter__(), metadata=_metadata(owner))
        try:
            await screen.recv_until(lambda f: f.get("type") == "transcript", timeout=WAIT)
            async with httpx.AsyncClient(base_url=hub.base_url, timeout=WAIT) as http:
                assert (
                    await http.delete(f"/sessions/{sid}", headers=_auth(owner))
                ).status_code == 200
            assert (await stream.last())[-1]["type"] == "RUN_FINISHED"
            assert await _ended_with(call) == grpc.StatusCode.OK
            done = await asyncio.wait_for(task, WAIT)
            assert not done.success and done.output == "Hello" and done.session_id == sid
        finally:
            chunks.finish()


async def test_one_user_holds_at_most_16_streams_over_ag_ui_and_grpc_together(
    hub_factory: HubFactory,
) -> None:
    hub, port = _grpc_hub(hub_factory)
    user = _user()
    owner = token(user)
    sid = await _session(hub, owner)
    channel, api = stub(port)
    async with channel, AsyncExitStack() as held:
        streams = [await held.enter_async_context(following(hub, sid, owner)) for _ in range(8)]
        calls = [await _subscribed(api, sid, owner) for _ in range(8)]
        async with ag_ui(hub, sid, owner) as response:
            assert response.status_code == 429
            assert json.loads(await response.aread())["error"]["code"] == "too_many_streams"
        over = api.Subscribe(pb.SubscribeRequest(session_id=sid), metadata=_metadata(owner))
        assert await _ended_with(over) == grpc.StatusCode.RESOURCE_EXHAUSTED
        task = api.StreamTask(Chunks(sid).__aiter__(), metadata=_metadata(owner))
        assert await status_of(task, WAIT) == grpc.StatusCode.RESOURCE_EXHAUSTED
        # Per user; admins and services are not counted.
        for other in (
            token(_user(), admin=True),
            token("svc", service=True),
            token("root", admin=True),
        ):
            async with following(hub, sid, other):
                pass
        # A place comes back when a stream closes.
        calls.pop().cancel()
        async with asyncio.timeout(WAIT):
            while True:
                async with ag_ui(hub, sid, owner) as response:
                    if response.status_code == 200:
                        break
                    assert response.status_code == 429
                await asyncio.sleep(0.1)
        for call in calls:
            call.cancel()
        assert len(streams) == 8


@pytest.fixture
def grpc_pair(tmp_path: Path) -> Iterator[tuple[Cluster, int]]:
    """Two hubs on one PostgreSQL database and one Redis, the second serving gRPC on the
    port given with them."""
    cluster = Cluster(tmp_path, size=1).start()
    try:
        port = free_port()
        second = HubProcess(
            database_url=cluster.database_url,
            env={
                "COMPANION_BROKER_URL": cluster.broker_url,
                "COMPANION_AUTO_MIGRATE": "false",
                "COMPANION_GRPC_PORT": str(port),
            },
            log_path=tmp_path / "hub1.log",
        )
        cluster.hubs.append(second)  # stopped with the cluster
        second.start()
        yield cluster, port
    finally:
        cluster.close()


@pytest.mark.redis
@pytest.mark.postgres
async def test_a_revoked_devices_streams_on_another_process_end(
    grpc_pair: tuple[Cluster, int],
) -> None:
    """The device is revoked through the first hub; its AG-UI stream and its gRPC
    ``Subscribe``, both open on the second, end."""
    cluster, port = grpc_pair
    first, second = cluster.hubs
    owner = token(_user())
    sid = await _session(first, owner)
    device, device_id = await _device_token(first, owner, sid)
    channel, api = stub(port)
    async with channel, following(second, sid, device) as stream:
        call = await _subscribed(api, sid, device)
        await _revoke(first, owner, sid, device_id)
        events = await stream.last()
        assert events[-1]["type"] == "RUN_ERROR" and events[-1]["code"] == "forbidden", events
        assert await _ended_with(call) == grpc.StatusCode.PERMISSION_DENIED
    for hub in (first, second):
        async with ag_ui(hub, sid, device) as response:
            assert response.status_code == 401
