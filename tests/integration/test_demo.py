"""``companion-ws demo``, run as a newcomer would: the hub, a session, the page's link,
and the scripted conversation through the real bridge and ElevenLabs SDK against the
built-in stand-in; a screen's pick reaches the agent, which labels that quote."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.support.hub import free_port
from tests.support.ws import connect


class Demo:
    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        self.process = process
        self.port = port
        self.lines: list[str] = []
        self.token = ""
        self.session_id = ""

    async def line_with(self, text: str, timeout: float = 60) -> str:
        assert self.process.stdout is not None
        async with asyncio.timeout(timeout):
            while True:
                raw = await self.process.stdout.readline()
                assert raw, f"the demo exited; it printed {self.lines!r}"
                line = raw.decode().rstrip()
                self.lines.append(line)
                if text in line:
                    return line

    async def get(self, path: str) -> Any:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{self.port}") as http:
            answer = await http.get(path, headers={"Authorization": f"Bearer {self.token}"})
        assert answer.status_code == 200, answer.text
        return answer.json()


async def _demo(*args: str) -> AsyncIterator[Demo]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "companion_ws", "demo", "--port", str(port), "--pace", "0.05",
        *args,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    demo = Demo(process, port)
    try:
        link = await demo.line_with("open the page")
        match = re.search(r"(http://\S+)/\?session_id=(\w+)&token=(\S+)", link)
        assert match is not None, link
        demo.session_id, demo.token = match.group(2), match.group(3)
        yield demo
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
            try:
                await asyncio.wait_for(process.wait(), 15)
            except TimeoutError:
                process.kill()
                raise
        assert process.returncode == 0


@pytest.fixture
async def demo(request: pytest.FixtureRequest) -> AsyncIterator[Demo]:
    async for running in _demo(*request.param):
        yield running


@pytest.mark.parametrize("demo", [("--no-wait", "--pick-timeout", "1")], indirect=True)
async def test_the_demo_plays_a_whole_shipping_conversation(demo: Demo) -> None:
    assert any("stand-in, not ElevenLabs" in line for line in demo.lines)
    await demo.line_with("the demo conversation is over")
    said = (await demo.get(f"/sessions/{demo.session_id}/messages"))["messages"]
    assert said[0]["role"] == "agent" and "scripted demo" in said[0]["text"]
    assert {m["role"] for m in said} == {"user", "agent"}
    assert all(m["final"] for m in said)
    # The interrupted answer shows what the agent had really said: the correction.
    assert any(m["text"].endswith("from Beverly Hills to New York.") for m in said), said
    assert any(m["text"] == "The cheapest one, please." for m in said)  # nobody picked
    state = (await demo.get(f"/sessions/{demo.session_id}/state"))["state"]
    assert state["label"]["tracking_number"].startswith("1Z")
    assert state["label"]["cost"] == min(q["cost"] for q in state["quotes"])
    assert [t["status"] for t in state["tasks"]] == ["completed"]


@pytest.mark.parametrize(
    "demo",
    [
        (
            "--pick-timeout",
            "30",
        )
    ],
    indirect=True,
)
async def test_a_quote_picked_on_a_screen_is_the_one_the_agent_labels(demo: Demo) -> None:
    await demo.line_with("waiting for the page")
    screen = await connect(f"ws://127.0.0.1:{demo.port}", demo.token, session_id=demo.session_id)
    await demo.line_with("the agent is talking")
    quotes = (
        await screen.recv_until(
            lambda f: f["type"] == "session_state_updated" and "quotes" in f["patch"], 30
        )
    )["patch"]["quotes"]
    await asyncio.sleep(0.3)  # the agent reads the quotes out, then waits for a pick
    picked = quotes[-1]
    reply = await screen.request(
        {"type": "update_session_state",
         "patch": {"selected_option": picked, "ui": {"current_step": "selected"}}}
    )  # fmt: skip
    assert reply["type"] == "session_state_updated", reply
    label = await screen.recv_until(
        lambda f: f["type"] == "session_state_updated" and bool(f["patch"].get("label")), 30
    )
    assert label["patch"]["label"]["carrier"] == picked["carrier"]
    assert label["patch"]["label"]["service"] == picked["service"]
    await demo.line_with("the demo conversation is over")
    said = (await demo.get(f"/sessions/{demo.session_id}/messages"))["messages"]
    assert not any(m["text"] == "The cheapest one, please." for m in said)
    await screen.close()
