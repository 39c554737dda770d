"""The ``companion-ws`` command (docs/protocol.md section 9): token, migrate, and a serve
that works with no configuration at all."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import BinaryIO

import httpx
import jwt
import pytest

from tests.support.hub import (
    SECRET,
    HubProcess,
    create_pg_database,
    drop_pg_database,
    free_port,
)
from tests.support.ws import connect

COMMAND = str(Path(sys.executable).parent / "companion-ws")
TABLES = {"sessions", "events", "tool_calls", "join_tokens", "alembic_version"}
JWT = re.compile(r"eyJ[\w-]+\.[\w-]+\.[\w-]+")


def _env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("COMPANION_JWT_") and k != "COMPANION_DATABASE_URL"
    }
    return {**env, **extra}


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [COMMAND, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


async def test_token_prints_a_jwt_the_hub_accepts(shared_hub: HubProcess) -> None:
    env = _env(COMPANION_JWT_SECRET=SECRET)
    admin = _run("token", "--sub", "cli-admin", "--admin", env=env)
    assert admin.returncode == 0, admin.stderr
    jwt = admin.stdout.strip()
    assert jwt.count(".") == 2 and "\n" not in jwt
    async with httpx.AsyncClient(base_url=shared_hub.base_url) as http:
        listed = await http.get("/sessions", headers={"Authorization": f"Bearer {jwt}"})
    assert listed.status_code == 200, listed.text  # an admin token
    ws = await connect(shared_hub.ws_url, jwt)
    assert ws.welcome["user_id"] == "cli-admin"
    sid = ws.welcome["session_id"]

    user = _run("token", "--sub", "cli-user", "--ttl", "60", env=env).stdout.strip()
    async with httpx.AsyncClient(base_url=shared_hub.base_url) as http:
        own = await http.get("/sessions", headers={"Authorization": f"Bearer {user}"})
    assert own.status_code == 200 and own.json()["sessions"] == []  # a user sees their own
    scoped = _run("token", "--sub", "cli-admin", "--session", sid, env=env).stdout.strip()
    again = await connect(shared_hub.ws_url, scoped)  # the scope names the session
    assert again.welcome["session_id"] == sid and again.welcome["created"] is False
    await again.close()
    await ws.close()


def test_token_without_a_key_explains_itself() -> None:
    result = _run("token", "--sub", "u", env=_env())
    assert result.returncode == 2
    assert "COMPANION_JWT_SECRET" in result.stderr and result.stdout == ""


def _tables(url: str) -> set[str]:
    if url.startswith("sqlite"):
        with sqlite3.connect(url.split("///", 1)[1]) as db:
            rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
        return {name for (name,) in rows}

    import asyncpg

    async def read() -> set[str]:
        conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
        try:
            rows = await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        finally:
            await conn.close()
        return {row["tablename"] for row in rows}

    return asyncio.run(read())


def test_migrate_creates_the_tables_on_a_fresh_database(db_url: str, tmp_path: Path) -> None:
    """db_url is a fresh PostgreSQL database (create_pg_database) or a new SQLite file."""
    assert not _tables(db_url) & TABLES
    result = _run("migrate", "--database-url", db_url, env=_env())
    assert result.returncode == 0, result.stderr
    assert "migrated" in result.stdout
    assert _tables(db_url) >= TABLES
    assert _run("migrate", "--database-url", db_url, env=_env()).returncode == 0  # idempotent
    _serves_with_migrations_off(db_url, tmp_path)


def _serves_with_migrations_off(database_url: str, tmp_path: Path) -> None:
    """The migrated database is all a hub needs: one started on it with migrations off
    finds its database ready."""
    hub = HubProcess(
        database_url=database_url,
        env={"COMPANION_AUTO_MIGRATE": "false"},
        log_path=tmp_path / "h.log",
    )
    try:
        hub.start()
        with httpx.Client(base_url=hub.base_url) as http:
            assert http.get("/readyz").json()["database"] is True
    finally:
        hub.stop()


def _log_file(path: Path) -> BinaryIO:
    return path.open("wb")


def _private_links(file: Path) -> dict[str, str]:
    """The labelled links in ``file``, which must be its owner's only."""
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    links: dict[str, str] = {}
    for line in file.read_text().splitlines():
        for label in ("companion UI", "WebSocket", "admin token"):
            value = _field(line, label)
            if value:
                links[label] = value
    return links


def _field(line: str, label: str) -> str | None:
    text = line.strip()
    if not text.startswith(label):
        return None
    return text[len(label) :].strip()


async def test_serve_without_a_key_writes_working_links_and_an_admin_token_to_a_private_file(
    db_url: str, tmp_path: Path
) -> None:
    """Not on a terminal (a log): stdout says where the development tokens are and
    carries none of them; the file is its owner's only and holds working links
    (docs/protocol.md section 9; the audit's N11)."""
    port = free_port()
    env = _env(COMPANION_DATABASE_URL=db_url, COMPANION_AUTO_MIGRATE="true", PYTHONFAULTHANDLER="1")
    with _log_file(tmp_path / "serve.log") as log:
        proc = await asyncio.create_subprocess_exec(
            COMMAND,
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
            cwd=tmp_path,  # a PostgreSQL hub writes the file in its working directory
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
    try:
        assert proc.stdout is not None
        printed: list[str] = []
        async with asyncio.timeout(30):
            while not any(_field(line, "dev tokens") for line in printed):
                line = (await proc.stdout.readline()).decode()
                assert line, f"serve exited early; see {tmp_path / 'serve.log'}"
                printed.append(line)
        assert not any(JWT.search(line) for line in printed), printed
        file = Path(next(v for v in (_field(line, "dev tokens") for line in printed) if v))
        assert file.parent == tmp_path  # beside the database (PostgreSQL: in its cwd)
        links = _private_links(file)
        ui, ws_url, admin = links["companion UI"], links["WebSocket"], links["admin token"]
        claims = jwt.decode(admin, options={"verify_signature": False})
        assert claims["exp"] - claims["iat"] <= 3600  # an hour at most
        assert ui.startswith(f"http://127.0.0.1:{port}/?token=")
        assert ws_url.startswith(f"ws://127.0.0.1:{port}/ws?token=")
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            async with asyncio.timeout(30):
                while True:
                    try:
                        if (await http.get("/healthz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        await asyncio.sleep(0.1)
            page = await http.get(ui)
            assert page.status_code == 200 and "text/html" in page.headers["content-type"]
            listed = await http.get("/sessions", headers={"Authorization": f"Bearer {admin}"})
            assert listed.status_code == 200, listed.text

        user_token = ui.split("token=", 1)[1]
        user = await connect(f"ws://127.0.0.1:{port}", user_token)
        assert user.welcome["user_id"] == "dev-user" and user.welcome["created"] is True
        sid = user.welcome["session_id"]
        root = await connect(f"ws://127.0.0.1:{port}", admin, session_id=sid)
        assert root.welcome["session_id"] == sid and root.welcome["user_id"] == "dev-admin"
        await root.close()
        await user.close()
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        try:
            code = await asyncio.wait_for(proc.wait(), 15)
        except TimeoutError:
            proc.send_signal(signal.SIGABRT)  # PYTHONFAULTHANDLER: stacks into the log
            await asyncio.wait_for(proc.wait(), 10)
            pytest.fail(f"serve hung after SIGTERM; see {tmp_path / 'serve.log'}")
    assert code == 0
    assert proc.stdout is not None
    rest = (await proc.stdout.read()).decode()
    assert not JWT.search(rest), rest


@pytest.mark.parametrize(
    "args", [["serve", "--port", "not-a-port"], ["serve", "--log-format", "xml"], ["nope"], []]
)
def test_bad_arguments_are_usage_errors(args: list[str]) -> None:
    result = _run(*args, env=_env())
    assert result.returncode == 2 and "usage:" in result.stderr


def test_a_bad_log_format_in_the_environment_is_refused() -> None:
    result = _run("serve", env=_env(COMPANION_LOG_FORMAT="xml"))
    assert result.returncode == 2 and "COMPANION_LOG_FORMAT" in result.stderr


# Needs a process: the URL forms a hosting provider hands out, given to the command line.
@pytest.mark.postgres
def test_the_postgres_url_forms_providers_hand_out_work(tmp_path: Path) -> None:
    url = create_pg_database()  # postgresql+asyncpg://...
    try:
        plain = url.replace("postgresql+asyncpg://", "postgres://", 1)
        result = _run("migrate", "--database-url", plain, env=_env())
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        assert _tables(url) >= TABLES
        libpq = url.replace("postgresql+asyncpg://", "postgresql://", 1)
        _serves_with_migrations_off(libpq, tmp_path)
    finally:
        drop_pg_database(url)


# Needs a process: `serve` with no key configured, stopped and started again.
def test_serve_without_a_key_keeps_its_development_key_across_a_restart(tmp_path: Path) -> None:
    """Issue 25, friction 4: a restart no longer turns every open page's token into a dead
    one. The key lives in a file beside the database, its owner's only."""
    env = _env(
        COMPANION_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'companion.db'}",
        COMPANION_AUTO_MIGRATE="true",
    )
    admins: list[str] = []
    for run in range(2):
        port = free_port()
        out = tmp_path / f"serve{run}.out"
        with out.open("wb") as stdout:
            proc = subprocess.Popen(
                [COMMAND, "serve", "--port", str(port), "--log-level", "warning"],
                cwd=tmp_path,
                env=env,
                stdout=stdout,
                stderr=subprocess.STDOUT,
            )
        try:
            base = f"http://127.0.0.1:{port}"
            with httpx.Client(base_url=base, timeout=5) as http:
                for _ in range(300):
                    try:
                        if http.get("/healthz").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    time.sleep(0.1)
                admins.append(_private_links(tmp_path / "companion.db.dev-tokens")["admin token"])
                for admin in admins:  # this run's token, and the first run's too
                    listed = http.get("/sessions", headers={"Authorization": f"Bearer {admin}"})
                    assert listed.status_code == 200, (run, listed.text)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(15) == 0
        printed = out.read_text()
        assert "companion.db.dev-key" in printed and not JWT.search(printed), printed
    key = tmp_path / "companion.db.dev-key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
