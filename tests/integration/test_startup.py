"""The operator's day (issue 12): ``serve`` refuses what would fail later, each time in one
line that says what to do; ``/readyz`` means it; the CLI fails fast and clearly."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.cluster import RedisServer
from tests.support.hub import SECRET, HubProcess, create_pg_database, drop_pg_database, free_port

CLI = [sys.executable, "-m", "companion_ws"]


def _run(*args: str, env: dict[str, str] | None = None, timeout: float = 30) -> tuple[int, str]:
    done = subprocess.run(
        [*CLI, *args],
        env={**os.environ, "COMPANION_JWT_SECRET": SECRET, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    return done.returncode, done.stdout + done.stderr


@pytest.fixture
def empty_pg() -> Iterator[str]:
    url = create_pg_database()
    try:
        yield url
    finally:
        drop_pg_database(url)


@pytest.mark.postgres
def test_an_unmigrated_postgresql_is_refused_with_one_line(empty_pg: str) -> None:
    code, out = _run("serve", "--port", str(free_port()), env={"COMPANION_DATABASE_URL": empty_pg})
    lines = [line for line in out.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1, out
    assert "is not migrated" in lines[0] and "companion-ws migrate" in lines[0]
    assert "--migrate" in lines[0]


@pytest.mark.postgres
def test_a_missing_database_is_refused_with_one_line() -> None:
    url = "postgresql+asyncpg://postgres@127.0.0.1:5432/companion_no_such_db"
    code, out = _run("serve", "--port", str(free_port()), env={"COMPANION_DATABASE_URL": url})
    assert code == 2 and "does not exist" in out and len(out.strip().splitlines()) == 1, out


@pytest.mark.postgres
def test_migrate_on_start_and_the_warning_about_a_lone_broker(
    empty_pg: str, tmp_path: Path
) -> None:
    """``--migrate`` starts an empty database; PostgreSQL with the in-process broker is
    a configuration that silently splits sessions across processes: said at start."""
    port = free_port()
    log = tmp_path / "hub.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*CLI, "serve", "--port", str(port), "--migrate", "--log-level", "warning"],
            env={**os.environ, "COMPANION_JWT_SECRET": SECRET, "COMPANION_DATABASE_URL": empty_pg},
            stdout=out,
            stderr=out,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/readyz")
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        assert ready.status_code == 200 and ready.json()["schema"] is True
        assert "will NOT share sessions" in log.read_text()
    finally:
        proc.terminate()
        proc.wait(15)


def test_a_busy_port_is_named_with_the_flag_to_use(tmp_path: Path) -> None:
    hub = HubProcess(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'a.db'}", log_path=tmp_path / "a.log"
    ).start()
    try:
        code, out = _run(
            "serve",
            "--port",
            str(hub.port),
            env={"COMPANION_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'b.db'}"},
        )
        assert code == 2 and f"port {hub.port}" in out and f"--port {hub.port + 1}" in out
        assert "Traceback" not in out and "address already in use" not in out.lower()
    finally:
        hub.stop()


async def test_readyz_is_503_while_the_broker_is_down(tmp_path: Path) -> None:
    redis = RedisServer(tmp_path / "redis").start()
    hub = HubProcess(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}",
        env={"COMPANION_BROKER_URL": redis.url},
        log_path=tmp_path / "hub.log",
    ).start()
    try:
        async with httpx.AsyncClient(base_url=hub.base_url, timeout=10) as http:
            ready = await http.get("/readyz")
            assert ready.status_code == 200, ready.text
            assert ready.json() == {
                "status": "ready",
                "database": True,
                "schema": True,
                "broker": True,
            }
            redis.kill()
            down = await http.get("/readyz")
            assert down.status_code == 503 and down.json()["broker"] is False
            redis.start()
            async with asyncio.timeout(20):
                while (await http.get("/readyz")).status_code != 200:  # noqa: ASYNC110
                    await asyncio.sleep(0.2)
    finally:
        hub.stop()
        redis.kill()


def test_connect_to_a_closed_port_says_so_within_five_seconds() -> None:
    started = time.monotonic()
    code, out = _run(
        "connect",
        "--url",
        f"ws://127.0.0.1:{free_port()}",
        env={"COMPANION_TOKEN": "anything"},
        timeout=20,
    )
    assert code != 0 and time.monotonic() - started < 5, out
    assert "nothing answers" in out and "companion-ws serve" in out


@pytest.mark.parametrize("ttl", ["-10", "0", "soon"])
def test_a_token_needs_a_positive_ttl(ttl: str) -> None:
    code, out = _run("token", "--sub", "alice", "--ttl", ttl)
    assert code == 2 and "--ttl" in out
