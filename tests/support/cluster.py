"""Several hub processes as one: a Redis server of the test's own and N ``HubProcess``es
on one PostgreSQL database and that Redis, as ``docs/scaling.md`` runs them."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.hub import HubProcess, create_pg_database, drop_pg_database, free_port


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:  # the test command installs it; never skip
        raise RuntimeError("redis-server is not installed; run scripts/test.sh")
    return found


@dataclass
class RedisServer:
    """A redis-server subprocess on its own loopback port, without persistence (as the
    machine's Redis runs): killing it loses every key, as a real crash would. Tests
    that stop or restart Redis use one of these, never the shared server."""

    directory: Path
    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        self.directory.mkdir(parents=True, exist_ok=True)
        log = open(self.directory / "redis.log", "ab")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--daemonize",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=log,
            stderr=log,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited; see {self.directory / 'redis.log'}")
            if self.ping():
                return self
            time.sleep(0.02)
        self.kill()
        raise RuntimeError(f"redis-server did not answer within {timeout}s")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as conn:
                conn.sendall(b"PING\r\n")
                return conn.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: every key is gone, every connection drops."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def restart(self) -> RedisServer:
        self.kill()
        return self.start()


@dataclass
class Cluster:
    """``size`` hubs on one fresh PostgreSQL database and one Redis of their own, or,
    with ``broker_url``, that broker (e.g. the test Redis Cluster). The first hub
    migrates the database; the others start on the migrated schema."""

    directory: Path
    size: int = 2
    env: dict[str, str] = field(default_factory=dict)
    database_url: str = ""
    redis: RedisServer | None = None
    broker_url: str = ""
    hubs: list[HubProcess] = field(default_factory=list)

    def start(self) -> Cluster:
        self.database_url = create_pg_database()
        try:
            if not self.broker_url:
                self.redis = RedisServer(self.directory / "redis").start()
                self.broker_url = self.redis.url
            for i in range(self.size):
                hub = HubProcess(
                    database_url=self.database_url,
                    env={
                        "COMPANION_BROKER_URL": self.broker_url,
                        "COMPANION_AUTO_MIGRATE": "true" if i == 0 else "false",
                        **self.env,
                    },
                    log_path=self.directory / f"hub{i}.log",
                )
                self.hubs.append(hub)
                hub.start()
        except BaseException:
            self.close()
            raise
        return self

    def close(self) -> None:
        for hub in self.hubs:
            hub.stop()
        if self.redis is not None:
            self.redis.kill()
        if self.database_url:
            drop_pg_database(self.database_url)
