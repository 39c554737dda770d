"""``companion-ws elevenlabs provision`` (docs/elevenlabs.md) against the stand-in of the
ElevenLabs API (companion_ws/demo/standin_api.py), through the official SDK: the hub's
tools, the session_id dynamic variable, authentication on, a prompt and first message;
run twice, it updates rather than duplicates."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import uvicorn

from companion_ws.cli import main
from companion_ws.demo.standin_api import AgentsApi
from tests.support.hub import free_port

KEY = "sk-stand-in-provision"


@pytest.fixture
def platform() -> Iterator[tuple[AgentsApi, str]]:
    api = AgentsApi(KEY)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(api.app, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the stand-in did not start"
        time.sleep(0.02)
    try:
        yield api, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


def _provision(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], base: str, *args: str
) -> tuple[int, str, str]:
    monkeypatch.setenv("ELEVENLABS_API_KEY", KEY)
    monkeypatch.delenv("COMPANION_TOOLS", raising=False)
    code = main(["elevenlabs", "provision", "--base-url", base, *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_provision_creates_the_agent_then_updates_it(
    platform: tuple[AgentsApi, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    api, base = platform
    code, out, err = _provision(monkeypatch, capsys, base)
    assert code == 0, err
    (agent_id,) = api.agents
    assert f"export COMPANION_ELEVENLABS_AGENT_ID={agent_id}" in out
    assert 'export COMPANION_ELEVENLABS_API_KEY="$ELEVENLABS_API_KEY"' in out
    assert f"export COMPANION_ELEVENLABS_BASE_URL={base}" in out
    assert KEY not in out  # the key is never echoed

    agent = api.agents[agent_id]
    assert agent["name"] == "companion-ws"
    assert agent["platform_settings"]["auth"]["enable_auth"] is True
    config = agent["conversation_config"]["agent"]
    assert config["first_message"]
    assert config["dynamic_variables"]["dynamic_variable_placeholders"] == {"session_id": ""}
    names = {t["name"] for t in api.tools.values()}
    assert {"get_shipping_quotes", "create_shipping_label"} <= names
    assert sorted(config["prompt"]["tool_ids"]) == sorted(api.tools)
    for name in names:
        assert f"- {name}:" in config["prompt"]["prompt"]  # the prompt fits the pack
    for tool in api.tools.values():
        assert tool["type"] == "client"
        session = tool["parameters"]["properties"]["session_id"]
        assert session == {"type": "string", "dynamic_variable": "session_id"}

    tools_before = dict(api.tools)
    code, out, err = _provision(monkeypatch, capsys, base, "--first-message", "Hello again")
    assert code == 0, err
    assert list(api.agents) == [agent_id] and api.tools.keys() == tools_before.keys()
    assert api.agents[agent_id]["conversation_config"]["agent"]["first_message"] == "Hello again"
    assert f"updated agent companion-ws ({agent_id})" in out


def test_provision_says_what_is_missing_or_refused(
    platform: tuple[AgentsApi, str],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    api, base = platform
    monkeypatch.delenv("ELEVENLABS_API_KEY", raising=False)
    monkeypatch.delenv("COMPANION_ELEVENLABS_API_KEY", raising=False)
    assert main(["elevenlabs", "provision", "--base-url", base]) == 2
    assert "set ELEVENLABS_API_KEY" in capsys.readouterr().err
    monkeypatch.setenv("ELEVENLABS_API_KEY", "sk-wrong")
    assert main(["elevenlabs", "provision", "--base-url", base]) == 1
    assert "refused (401)" in capsys.readouterr().err
    assert not api.agents
