"""The examples in examples/ run beside a real hub, as the README says."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.support.backends import BusProbe, new_session
from tests.support.hub import HubProcess, free_port, token
from tests.support.ws import connect

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
async def bus() -> AsyncIterator[BusProbe]:
    probe = await BusProbe("nats").open()
    try:
        yield probe
    finally:
        await probe.close()


@pytest.fixture
def hub(bus: BusProbe, tmp_path: Path) -> Iterator[tuple[HubProcess, int]]:
    port = free_port()
    hub = HubProcess(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}",
        env={**bus.env(), "COMPANION_GRPC_PORT": str(port)},
        log_path=tmp_path / "hub.log",
    ).start()
    try:
        yield hub, port
    finally:
        hub.stop()


async def test_the_orchestrator_answers_a_screens_chat_request(
    bus: BusProbe, hub: tuple[HubProcess, int]
) -> None:
    server = hub[0]
    sid = await new_session(server)
    screen = await connect(server.ws_url, token("alice"), session_id=sid)
    env = {"COMPANION_BUS_URL": bus.url, "COMPANION_BUS_PREFIX": bus.prefix, "PATH": ""}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(EXAMPLES / "orchestrator.py"), env=env, stdout=subprocess.PIPE
    )
    try:
        assert proc.stdout is not None
        assert b"listening" in await asyncio.wait_for(proc.stdout.readline(), 20)
        await screen.send(
            {
                "type": "contextual_update",
                "text": "chat_request",
                "data": {"question": "cheapest carrier?"},
                "requestId": "q1",
            }
        )
        texts = []
        while True:
            frame = await screen.recv_until(
                lambda f: f.get("type") == "transcript" and f.get("requestId") == "q1", 10
            )
            texts.append(frame["text"])
            if frame["final"]:
                break
        assert texts[-1].startswith("You asked: 'cheapest carrier?'") and len(texts) == 3
        await screen.send(
            {"type": "contextual_update", "text": "chat_request", "data": {}, "requestId": "q2"}
        )
        error = await screen.recv_until(lambda f: f.get("text") == "chat_error", 10)
        assert error["requestId"] == "q2" and error["session_id"] == sid
    finally:
        proc.kill()
        await proc.wait()
        await screen.close()


async def test_the_grpc_example_streams_a_task_into_a_session(
    hub: tuple[HubProcess, int],
) -> None:
    server, port = hub
    sid = await new_session(server)
    screen = await connect(server.ws_url, token("alice"), session_id=sid)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        str(EXAMPLES / "grpc_stream_task.py"),
        "--target",
        f"127.0.0.1:{port}",
        "--token",
        token("svc", service=True),
        "--session",
        sid,
        stdout=subprocess.PIPE,
    )
    stdout, _ = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0 and b"task-1: Checking carriers" in stdout
    frame = await screen.recv_until(lambda f: f.get("type") == "transcript" and f["final"], 10)
    assert frame["message_id"] == "task-1" and frame["text"].endswith("arriving in 3 days.")
    await screen.close()
