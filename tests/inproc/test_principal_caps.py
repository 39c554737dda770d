"""Per-principal caps (docs/protocol.md section 4, v1.2), in process: a node on the memory
broker and a temporary SQLite store, with fake sockets; the HTTP API through httpx's
ASGI transport. The caps are rules of the node's services, not of the
wire: the sockets a user may hold (even when its connects interleave), and the new
sessions a user may create."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from companion_ws.app import create_app, token_service
from companion_ws.auth.tokens import Principal
from companion_ws.broker import make_broker
from companion_ws.hub.connection import Connection
from companion_ws.hub.node import Node
from companion_ws.hub.quota import PerUser, counted
from companion_ws.metrics import Metrics
from companion_ws.protocol.errors import TooManyConnections, TooManySessions, TooManyStreams
from companion_ws.settings import Settings
from companion_ws.store.eventlog import EventLog
from companion_ws.store.store import Store
from companion_ws.tools.registry import ToolRegistry
from tests.support.hub import SECRET, token


def _settings(tmp_path: Path, **changes: Any) -> Settings:
    return Settings(
        jwt_secret=SECRET,
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}",
        connect_rate=100_000.0,
        connect_burst=100_000,
        **changes,
    )


@asynccontextmanager
async def running_node(settings: Settings) -> AsyncIterator[Node]:
    """The node as ``create_app`` builds it, started on its store, then stopped."""
    store = Store(settings.database_url)
    await store.migrate()
    eventlog = EventLog(store, interval=0.05, batch=500, ttl_ms=3_600_000)
    broker = make_broker(
        "memory://",
        history_size=settings.history_size,
        history_ttl=settings.history_ttl,
        history_bytes=settings.history_bytes,
        presence_ttl=settings.presence_ttl,
        journal=eventlog,
    )
    node = Node(
        settings,
        store=store,
        broker=broker,
        tokens=token_service(settings),
        tools=ToolRegistry.from_modules(()),
        metrics=Metrics(),
        eventlog=eventlog,
    )
    await node.start()
    try:
        yield node
    finally:
        await node.stop()
        await store.close()


async def _ignore(message: dict[str, Any]) -> None:
    """A fake socket's send: the frames are not what these tests look at."""


async def _join(node: Node, who: Principal, session_id: str) -> Connection:
    return await node.admission.join(
        who,
        send=_ignore,
        abort=lambda: None,
        requested=session_id,
        client="ui",
        last_seq=None,
        epoch=None,
    )


def test_a_place_is_taken_and_given_back_and_admins_and_services_are_not_counted() -> None:
    places = PerUser(2)
    assert places.take("alice") and places.take("alice") and not places.take("alice")
    assert places.take("bob")  # per user
    places.give("alice")
    assert places.take("alice") and places.held("alice") == 2
    assert counted(Principal(sub="alice"))
    assert not counted(Principal(sub="root", is_admin=True))
    assert not counted(Principal(sub="billing", is_service=True))


async def test_the_socket_cap_holds_when_one_users_connects_interleave(tmp_path: Path) -> None:
    """Audit L5: the check and the reservation are one step, so ten connects of one user
    that all wait on the database at once still admit exactly the cap."""
    async with running_node(_settings(tmp_path, max_connections_per_user=3)) as node:
        sid = (await node.sessions.create("alice")).id
        alice = Principal(sub="alice", expires_at=0.0)
        results = await asyncio.gather(
            *(_join(node, alice, sid) for _ in range(10)), return_exceptions=True
        )
        admitted = [r for r in results if isinstance(r, Connection)]
        refused = [r for r in results if isinstance(r, TooManyConnections)]
        assert (len(admitted), len(refused)) == (3, 7), results
        # A place comes back when a socket leaves, and only then.
        await node.admission.leave(admitted[0])
        admitted[0] = await _join(node, alice, sid)
        with pytest.raises(TooManyConnections):
            await _join(node, alice, sid)
        # Admins and services are capped per address only.
        root = Principal(sub="root", is_admin=True)
        service = Principal(sub="billing", is_service=True)
        extra = [await _join(node, who, sid) for who in (root, root, service, service)]
        for conn in admitted + extra:
            await node.admission.leave(conn)


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """Run an ASGI app's lifespan (the node starts and stops in it)."""
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    outbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.create_task(app(scope, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        assert (await outbox.get())["type"] == "lifespan.shutdown.complete"
        await task


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(_settings(tmp_path, session_create_rate=0.01, session_create_burst=3))
    async with (
        lifespan(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://hub") as c,
    ):
        yield c


def _bearer(tok: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {tok}"}


async def test_new_sessions_past_the_users_burst_are_429_rate_limited(
    http: httpx.AsyncClient,
) -> None:
    alice = _bearer(token("alice"))
    for _ in range(3):
        assert (await http.post("/sessions", headers=alice)).status_code == 201
    refused = await http.post("/sessions", headers=alice)
    assert refused.status_code == 429 and refused.json()["error"]["code"] == "rate_limited"
    # Per user: another user goes on; admins and services are not limited by it.
    assert (await http.post("/sessions", headers=_bearer(token("bob")))).status_code == 201
    for _ in range(5):
        admin = await http.post("/sessions", headers=_bearer(token("root", admin=True)))
        assert admin.status_code == 201
        service = await http.post("/sessions", headers=_bearer(token("svc", service=True)))
        assert service.status_code == 201


async def test_a_connect_that_would_create_a_session_past_the_rate_is_closed_4429(
    tmp_path: Path,
) -> None:
    settings = _settings(tmp_path, session_create_rate=0.01, session_create_burst=2)
    async with running_node(settings) as node:
        alice = Principal(sub="alice")
        existing = await node.joins.resolve(alice, None, "ui")
        await node.joins.resolve(alice, "no-such-session", "ui")  # a new one instead
        with pytest.raises(TooManySessions) as refused:
            await node.joins.resolve(alice, None, "ui")
        assert refused.value.code == "rate_limited" and refused.value.close_code == 4429
        with pytest.raises(TooManySessions):
            await node.joins.resolve(alice, "no-such-session", "ui")
        # Joining a session that exists creates nothing: not limited.
        again = await node.joins.resolve(alice, existing.row.id, "ui")
        assert not again.created


async def test_streams_take_places_in_their_users_cap_and_leave_no_deadline_behind(
    tmp_path: Path,
) -> None:
    """Streams opened and closed in a loop on hour-long tokens: each gives its place
    back, and the heap of deadlines does not keep them for the hour."""
    async with running_node(_settings(tmp_path, max_streams_per_user=2)) as node:
        sid = (await node.sessions.create("alice")).id
        alice = Principal(sub="alice", expires_at=time.time() + 3600)
        async with node.streams.open(alice, sid), node.streams.open(alice, sid):
            with pytest.raises(TooManyStreams) as refused:
                node.streams.reserve(alice, sid)
            assert refused.value.code == "too_many_streams" and refused.value.http_status == 429
            async with node.streams.open(Principal(sub="root", is_admin=True), sid):
                pass  # admins are not counted
        for _ in range(1000):
            async with node.streams.open(alice, sid) as ticket:
                assert not ticket.closed.is_set()
        assert node.streams.open_count(alice) == 0
        assert len(node._lifetimes) < 200
