"""``companion-ws serve --workers N`` (docs/scaling.md): N processes on one port, each a
whole hub, acting as one through the shared Redis and PostgreSQL; refused on the
in-process broker."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_cluster import Client, assert_gap_free, eventually, said_all
from tests.support.hub import REDIS_URL, HubProcess, create_pg_database, drop_pg_database

pytestmark = [pytest.mark.postgres, pytest.mark.redis]


def workers_of(supervisor: int) -> list[int]:
    children = Path(f"/proc/{supervisor}/task/{supervisor}/children").read_text().split()
    return [int(pid) for pid in children]


def connections_on(pid: int, port: int, state: str = "01") -> int:
    """The TCP sockets of ``port`` in ``state`` (01 established, 0A listening) that
    process ``pid`` holds."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local_port = int(fields[1].rsplit(":", 1)[1], 16)
            if local_port == port and fields[3] == state and fields[9] in inodes:
                count += 1
    return count


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[HubProcess]:
    database = create_pg_database()
    hub = HubProcess(
        database_url=database,
        env={"COMPANION_BROKER_URL": REDIS_URL},
        args=["--workers", "2"],
        log_path=tmp_path / "hub.log",
    )
    try:
        yield hub.start(timeout=60)  # two hubs booting on a shared machine
    finally:
        hub.stop()
        drop_pg_database(database)


async def test_one_sessions_clients_on_both_workers_see_one_seq_order(
    two_workers: HubProcess, clients: list[Client]
) -> None:
    assert two_workers.proc is not None
    pids = workers_of(two_workers.proc.pid)
    assert len(pids) == 2
    # both listening (the second starts once the first answers)
    await eventually(lambda: all(connections_on(p, two_workers.port, "0A") for p in pids))
    first = await Client.join(two_workers)
    clients.append(first)
    sid = first.ws.welcome["session_id"]
    for _ in range(11):  # the kernel spreads them: all 12 on one worker is 1 in 2048
        clients.append(await Client.join(two_workers, sid))
    per_worker = [connections_on(pid, two_workers.port) for pid in pids]
    assert sum(per_worker) == 12 and min(per_worker) > 0, per_worker

    for n in range(20):
        for i, client in enumerate(clients[:4]):
            await client.say(f"from-{i}", n)
    await eventually(lambda: all(said_all(c, 4, 80) for c in clients))
    orders = [
        [
            (f["seq"], f["text"], f["data"]["n"])
            for f in c.broadcasts()
            if f["type"] == "contextual_update"
        ]
        for c in clients
    ]
    assert all(order == orders[0] for order in orders)
    for client in clients:
        assert_gap_free(client.broadcasts())


def test_workers_refuse_the_in_process_broker(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "companion_ws", "serve", "--workers", "2", "--port", "1"],
        env={
            **os.environ,
            "COMPANION_BROKER_URL": "memory://",
            "COMPANION_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}",
        },
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "--workers 2 needs a broker the processes share" in result.stderr
    assert "COMPANION_BROKER_URL=redis://" in result.stderr
