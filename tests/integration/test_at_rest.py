"""What the hub leaves on disk (docs/protocol.md section 7, v1.2): the SQLite files are
its owner's only, and a join code is kept only as its SHA-256."""

from __future__ import annotations

import contextlib
import hashlib
import os
import stat
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from alembic import command
from sqlalchemy import Connection, text

from companion_ws.protocol.clock import now_ms
from companion_ws.store.store import Store, alembic_config
from tests.support.hub import HubFactory, HubProcess, token
from tests.support.ws import connect

COMMAND = str(Path(sys.executable).parent / "companion-ws")


@contextlib.contextmanager
def _umask(mask: int) -> Iterator[None]:
    """The usual umask (022: new files world-readable), so that a file the hub does not
    make private shows here whatever the test runner's umask is."""
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _sqlite_files(db: Path) -> list[Path]:
    return [db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")]


async def test_the_hubs_database_files_are_its_owners_only(tmp_path: Path) -> None:
    db = tmp_path / "hub.db"
    hub = HubProcess(database_url=f"sqlite+aiosqlite:///{db}", log_path=tmp_path / "hub.log")
    with _umask(0o022):
        hub.start()
    try:
        async with httpx.AsyncClient(base_url=hub.base_url, timeout=15) as http:
            created = await http.post("/sessions", headers={"Authorization": f"Bearer {token()}"})
            assert created.status_code == 201, created.text
        # A write went through the WAL: all three files exist now.
        for path in _sqlite_files(db):
            assert path.exists(), path
            assert _mode(path) == 0o600, (path, oct(_mode(path)))
    finally:
        hub.stop()


def test_migrate_creates_the_default_and_a_named_database_private(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "COMPANION_DATABASE_URL"}
    named = tmp_path / "named.db"
    with _umask(0o022):
        for args in ([], ["--database-url", f"sqlite+aiosqlite:///{named}"]):
            result = subprocess.run(
                [COMMAND, "migrate", *args],
                cwd=tmp_path,
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == 0, result.stderr
    for db in (tmp_path / "companion.db", named):
        assert db.exists(), db
        for path in _sqlite_files(db):
            if path.exists():
                assert _mode(path) == 0o600, (path, oct(_mode(path)))


async def _join_token_rows(db_url: str) -> list[dict[str, object]]:
    store = Store(db_url)
    try:
        async with store.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT * FROM join_tokens"))).mappings().all()
    finally:
        await store.close()
    return [dict(row) for row in rows]


@pytest.mark.every_store
async def test_a_join_code_is_stored_only_as_its_hash_and_still_joins(
    db_url: str, hub_factory: HubFactory
) -> None:
    hub = hub_factory().start()
    owner = token(f"u-{uuid.uuid4().hex[:8]}")
    async with httpx.AsyncClient(base_url=hub.base_url, timeout=15) as http:
        created = await http.post("/sessions", headers={"Authorization": f"Bearer {owner}"})
        sid = created.json()["session_id"]
        issued = await http.post(
            f"/sessions/{sid}/join-token", headers={"Authorization": f"Bearer {owner}"}
        )
    assert issued.status_code == 201, issued.text
    code = issued.json()["join_token"]

    rows = await _join_token_rows(db_url)
    assert len(rows) == 1
    assert code not in {str(v) for v in rows[0].values()}
    assert not any(code in str(v) for v in rows[0].values())
    assert rows[0]["code_hash"] == hashlib.sha256(code.encode()).hexdigest()

    companion = await connect(hub.ws_url, code, client="ui")
    assert companion.welcome["session_id"] == sid
    await companion.close()


async def test_the_migration_hashes_the_plain_codes_already_stored(db_url: str) -> None:
    """A database at 0004 holding a plain code: after the upgrade it holds the code's
    hash, and the code still joins (once)."""
    store = Store(db_url)

    def to(revision: str) -> Callable[[Connection], None]:
        def run(conn: Connection) -> None:
            cfg = alembic_config(db_url)
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, revision)

        return run

    code = "plain-code-" + uuid.uuid4().hex
    now = now_ms()
    try:
        async with store.engine.begin() as conn:
            await conn.run_sync(to("0004"))
        async with store.engine.begin() as conn:
            await conn.execute(
                text(
                    "INSERT INTO sessions (id, owner_id, created_at, last_activity_at,"
                    " expires_at, state, state_version, last_seq, epoch, epoch_clean)"
                    " VALUES ('s1', 'alice', :now, :now, :later, '{}', 0, 0, 'e1', :clean)"
                ),
                {"now": now, "later": now + 3_600_000, "clean": True},
            )
            await conn.execute(
                text(
                    "INSERT INTO join_tokens (jti, session_id, created_by, expires_at, role)"
                    " VALUES (:code, 's1', 'alice', :later, 'observer')"
                ),
                {"code": code, "later": now + 300_000},
            )
        async with store.engine.begin() as conn:
            await conn.run_sync(to("head"))
        async with store.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT * FROM join_tokens"))).mappings().all()
        assert [row["code_hash"] for row in rows] == [hashlib.sha256(code.encode()).hexdigest()]
        assert not any(code in str(v) for row in rows for v in row.values())

        async with store.uow() as uow:
            joined = await uow.join_tokens.consume(code, now_ms())
            again = await uow.join_tokens.consume(code, now_ms())
            await uow.commit()
        assert joined is not None and joined.session_id == "s1" and joined.role == "observer"
        assert again is None
    finally:
        await store.close()
