"""``redis+cluster://`` URLs: the seed nodes (docs/protocol.md section 18)."""

from __future__ import annotations

import pytest

from companion_ws.broker.redis.cluster import seed_nodes
from companion_ws.workers import refusal, worker_argv


def test_every_seed_node_is_read() -> None:
    assert seed_nodes("redis+cluster://10.0.0.1:7001,10.0.0.2:7002") == [
        ("10.0.0.1", 7001),
        ("10.0.0.2", 7002),
    ]
    assert seed_nodes("redis+cluster://user:secret@redis-a:6379") == [("redis-a", 6379)]
    assert seed_nodes("redis+cluster://[::1]:7001") == [("::1", 7001)]


@pytest.mark.parametrize(
    "url", ["redis://a:1", "redis+cluster://a", "redis+cluster://a:x", "redis+cluster://:1"]
)
def test_a_seed_without_host_and_port_is_refused(url: str) -> None:
    with pytest.raises(ValueError):
        seed_nodes(url)


def test_workers_need_a_shared_broker() -> None:
    assert refusal("memory://", 1) is None
    assert refusal("redis://127.0.0.1:6379/0", 4) is None
    assert "COMPANION_BROKER_URL" in (refusal("memory://", 2) or "")
    assert refusal("redis://x:1", 0) is not None


def test_a_worker_runs_serve_without_workers_or_migrate_and_shares_the_port() -> None:
    argv = ["serve", "--port", "8000", "--workers", "3", "--migrate", "--workers=2"]
    assert worker_argv(argv) == ["serve", "--port", "8000", "--reuse-port"]
