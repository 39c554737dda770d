"""A real hub in a subprocess on a free loopback port, and databases to run it on."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx

from companion_ws.auth.tokens import TokenConfig, TokenService

SECRET = "test-secret-0123456789-abcdefghijklmnop"
PG_ADMIN_DSN = os.environ.get("COMPANION_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("COMPANION_TEST_REDIS", "redis://127.0.0.1:6379/0")
# the three-master cluster scripts/test.sh starts (scripts/redis_cluster.sh)
REDIS_CLUSTER_URL = os.environ.get(
    "COMPANION_TEST_REDIS_CLUSTER", "redis+cluster://127.0.0.1:7001,127.0.0.1:7002"
)

# What every test hub runs with, in a subprocess (as COMPANION_* variables) or in the
# test's process (tests/support/inproc.py); a test sets its own on top.
TEST_SETTINGS: dict[str, Any] = {
    "jwt_secret": SECRET,
    "auto_migrate": True,
    "event_flush_interval": 0.05,
    # Every test connects from 127.0.0.1: the per-address connect limit is lifted here
    # and set low only by the test of it (test_abuse.py).
    "connect_rate": 100000.0,
    "connect_burst": 100000,
    # Tests share a few users (alice...): the per-user rate of new sessions is lifted
    # here too, and set by the tests of it (test_principal_caps.py).
    "session_create_rate": 100000.0,
    "session_create_burst": 100000,
}

tokens = TokenService(TokenConfig(algorithm="HS256", verifying_key=SECRET, signing_key=SECRET))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def token(sub: str = "alice", **kwargs: object) -> str:
    return tokens.mint(sub, **kwargs)  # type: ignore[arg-type]


def create_pg_database() -> str:
    """A fresh PostgreSQL database; returns its SQLAlchemy async URL."""
    import asyncpg

    name = f"cw_test_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    asyncio.run(create())
    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://", 1)
    return f"{base}/{name}"


def drop_pg_database(url: str) -> None:
    import asyncpg

    name = url.rsplit("/", 1)[1]

    async def drop() -> None:
        conn = await asyncpg.connect(PG_ADMIN_DSN)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()

    asyncio.run(drop())


@dataclass
class HubProcess:
    """``companion-ws serve`` as a user runs it, on its own port."""

    database_url: str
    env: dict[str, str] = field(default_factory=dict)
    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    access_log: bool = False  # uvicorn's access and WebSocket lines, at --log-level info
    args: list[str] = field(default_factory=list)  # more of serve's flags (--workers 2)
    proc: subprocess.Popen[bytes] | None = None
    tls: bool = False  # it serves HTTPS (--dev-tls, --certfile): its URLs say so

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"{'wss' if self.tls else 'ws'}://127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> HubProcess:
        # A liveness bound, not a speed claim: a hub starts in about 2 s of CPU, but a
        # loaded 2-core machine (four workers, Chromium, other hubs) can take 20 s or more.
        env = {
            **os.environ,
            **{f"COMPANION_{name.upper()}": str(value) for name, value in TEST_SETTINGS.items()},
            "COMPANION_DATABASE_URL": self.database_url,
            # SIGABRT makes a hung hub print every thread's stack into its log.
            "PYTHONFAULTHANDLER": "1",
            **self.env,
        }
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "companion_ws",
                "serve",
                "--port",
                str(self.port),
                *([] if self.access_log else ["--no-access-log"]),
                "--log-level",
                "info" if self.access_log else "warning",
                *self.args,
            ],
            env=env,
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"the hub exited with {self.proc.returncode}; see {self.log_path}"
                )
            try:
                health = httpx.get(f"{self.base_url}/healthz", timeout=0.5, verify=False)
                if health.status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"the hub did not start within {timeout}s; see {self.log_path}")

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def wait(self, timeout: float = 15.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        """SIGTERM, and a graceful exit within 15 s: a hub that hangs on shutdown is
        killed and reported, never hidden."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.send_signal(signal.SIGABRT)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    self.proc.wait(5)
                self.kill()
                raise AssertionError(
                    f"the hub did not exit within 15 s of SIGTERM; see {self.log_path}"
                ) from None

    def restart(self) -> HubProcess:
        """Start again on the same port and database."""
        self.stop()
        return self.start()


class HubFactory(Protocol):
    def __call__(
        self, env: dict[str, str] | None = None, port: int | None = None
    ) -> HubProcess: ...
