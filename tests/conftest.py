"""Fixtures: real hubs on loopback, on SQLite and on PostgreSQL.

Which databases a test runs on (``pytest_generate_tests`` below): the store itself and
the hub's rules in process run on both; a real hub process runs on SQLite, the embedded
default, unless the test is marked ``every_store``. PostgreSQL must be answering (the
README's test command starts it); these tests never skip.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from companion_ws.store.store import Store
from tests.support.backends import BusProbe
from tests.support.cluster import Cluster
from tests.support.fake_elevenlabs import TALK_AGENT, TALK_API_KEY, FakeElevenLabs
from tests.support.hub import HubFactory, HubProcess, create_pg_database, drop_pg_database
from tests.support.inproc import InProcessHub, inprocess_hub

ARTIFACTS = Path(os.environ.get("COMPANION_TEST_ARTIFACTS", "test-artifacts"))


def _db_url(kind: str, tmp_path: Path) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
        return
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


STORES = ("sqlite", "postgres")

# The fixtures that start real hub processes on the test's database.
PROCESS_FIXTURES = frozenset({"hub_factory", "hub", "shared_hub"})


def stores_for(fixturenames: list[str], every_store: bool) -> tuple[str, ...]:
    """The databases a test runs on. The store's own tests and the hub's rules in
    process (cheap, and the SQL each database runs) take both. A test that starts hub
    processes takes SQLite alone, unless it is marked ``every_store``: its subject is
    what a database keeps across a process's life (a crash, a restart, a shutdown, two
    processes on one database, a migration) or what only PostgreSQL refuses (the fuzzed
    HTTP API). What such a process does above the store (pages, limits, the wire) is the
    same on both, and the store's contract is tested on both."""
    if every_store or not PROCESS_FIXTURES.intersection(fixturenames):
        return STORES
    return ("sqlite",)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    every = metafunc.definition.get_closest_marker("every_store") is not None
    stores = stores_for(metafunc.fixturenames, every)
    params = [pytest.param(s, marks=pytest.mark.postgres) if s == "postgres" else s for s in stores]
    if "db_url" in metafunc.fixturenames:
        metafunc.parametrize("db_url", params, indirect=True)
    for shared in ("shared_db_url", "shared_hub"):
        if shared in metafunc.fixturenames:
            metafunc.parametrize(shared, params, indirect=True, scope="module")


@pytest.fixture
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    yield from _db_url(request.param, tmp_path)


@pytest.fixture
async def store(db_url: str) -> AsyncIterator[Store]:
    """The hub's store on the test's database, migrated, for tests of the store itself."""
    store = Store(db_url)
    await store.migrate()
    yield store
    await store.close()


@pytest.fixture
async def inproc(db_url: str) -> AsyncIterator[InProcessHub]:
    """The hub in the test's own process (tests/support/inproc.py), on the test's
    database and the memory broker: for rule tests, which need no wire or process."""
    async with inprocess_hub(db_url) as hub:
        yield hub


@pytest.fixture(scope="module")
def shared_db_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """One database for a whole module, on SQLite and on PostgreSQL (as ``shared_hub``)."""
    yield from _db_url(request.param, tmp_path_factory.mktemp("shared_db"))


@pytest.fixture
async def shared_inproc(shared_db_url: str) -> AsyncIterator[InProcessHub]:
    """A fresh in-process hub per test on the module's database: for rule tests that
    each use their own users (as the ``shared_hub`` tests do), without a database made
    and dropped per test."""
    async with inprocess_hub(shared_db_url) as hub:
        yield hub


@pytest.fixture(params=["nats", "redis"])
async def bus(request: pytest.FixtureRequest) -> AsyncIterator[BusProbe]:
    """The test's end of the message bus, on NATS JetStream and on Redis Streams, under a
    prefix of its own (tests/support/backends.py)."""
    probe = await BusProbe(request.param).open()
    try:
        yield probe
    finally:
        await probe.close()


@pytest.fixture
async def talk_platform() -> AsyncIterator[FakeElevenLabs]:
    """The local stand-in of the ElevenLabs platform the talk tests sign conversations
    with (tests/support/fake_elevenlabs.py)."""
    async with FakeElevenLabs(agent_id=TALK_AGENT, api_key=TALK_API_KEY) as server:
        yield server


@pytest.fixture
def two(tmp_path: Path) -> Iterator[Cluster]:
    """Two hubs on one PostgreSQL database and one Redis (tests/support/cluster.py)."""
    cluster = Cluster(tmp_path, size=2)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.close()


@pytest.fixture
def hub_factory(db_url: str, tmp_path: Path) -> Iterator[HubFactory]:
    """Start hubs on the test's database: ``hub_factory(env={...}).start()``."""
    started: list[HubProcess] = []

    def make(env: dict[str, str] | None = None, port: int | None = None) -> HubProcess:
        process = HubProcess(
            database_url=db_url, env=env or {}, log_path=tmp_path / f"hub{len(started)}.log"
        )
        if port is not None:
            process.port = port
        started.append(process)
        return process

    yield make
    for process in started:
        process.stop()


@pytest.fixture
def hub(hub_factory: HubFactory) -> HubProcess:
    return hub_factory().start()


@pytest.fixture(scope="module")
def shared_hub(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HubProcess]:
    """One hub for a whole module, for tests that do not restart or reconfigure it."""
    tmp = tmp_path_factory.mktemp("shared")
    for url in _db_url(request.param, tmp):
        process = HubProcess(database_url=url, log_path=tmp / "hub.log").start()
        try:
            yield process
        finally:
            process.stop()
