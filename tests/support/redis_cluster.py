# mypy: disable-error-code="no-untyped-call"
"""A Redis Cluster of the test's own (three masters, append-only files), started by the
same script as the test command's (scripts/redis_cluster.sh): for tests that kill a
shard or move a slot, never on the shared cluster."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "redis_cluster.sh"


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_ports(count: int = 3) -> list[int]:
    """``count`` ports free with their cluster bus ports (port + 10000)."""
    while True:
        base = random.randrange(20000, 29000, 10)
        ports = list(range(base, base + count))
        if all(_free(p) and _free(p + 10000) for p in ports):
            return ports


@dataclass
class LocalRedisCluster:
    directory: Path
    ports: list[int] = field(default_factory=cluster_ports)

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in self.ports[:2])

    def start(self) -> LocalRedisCluster:
        """Start every node that does not answer (a killed one from its AOF)."""
        subprocess.run(
            ["bash", str(SCRIPT), str(self.directory), *map(str, self.ports)],
            check=True,
            timeout=60,
        )
        return self

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=port)

    def owner(self, key: bytes) -> int:
        """The port of the primary serving ``key``'s slot."""
        client = self.node(self.ports[0])
        try:
            slot = int(client.cluster("KEYSLOT", key))
            for start, end, primary, *_ in client.execute_command("CLUSTER SLOTS"):
                if start <= slot <= end:
                    return int(primary[1])
        finally:
            client.close()
        raise LookupError(slot)

    def kill(self, port: int) -> None:
        """SIGKILL one shard: what its append-only file kept survives a restart."""
        pid = int((self.directory / str(port) / "redis.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.01)

    def move_slot(self, key: bytes, to_port: int) -> None:
        """Migrate ``key``'s slot, with its keys, to the primary on ``to_port`` (as
        ``redis-cli --cluster reshard`` does): MOVED for every client after."""
        from_port = self.owner(key)
        source, target = self.node(from_port), self.node(to_port)
        try:
            slot = int(source.execute_command("CLUSTER KEYSLOT", key))
            source_id = source.execute_command("CLUSTER MYID").decode()
            target_id = target.execute_command("CLUSTER MYID").decode()
            target.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", source_id)
            source.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target_id)
            while keys := source.execute_command("CLUSTER GETKEYSINSLOT", slot, 100):
                source.execute_command("MIGRATE", "127.0.0.1", to_port, "", 0, 5000, "KEYS", *keys)
            for port in self.ports:
                node = self.node(port)
                try:
                    node.execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)
                finally:
                    node.close()
        finally:
            source.close()
            target.close()

    def stop(self) -> None:
        for port in self.ports:
            pidfile = self.directory / str(port) / "redis.pid"
            if pidfile.exists():
                pid = int(pidfile.read_text())
                if _pid_alive(pid):
                    os.kill(pid, signal.SIGKILL)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie of ours would still "exist": redis-server daemonizes, so it is not ours
    return True
