"""A newcomer's first hour on the page (issue 25, frictions 8-10), in Chromium: who did
what (a service, gRPC and the bus read as "Backend", never "Another screen" or "Voice
agent"), a copied address and the printed link opened twice."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.async_api import expect

from companion_ws.grpc.v1 import companion_pb2 as pb
from tests.e2e.conftest import Screens
from tests.support.backends import BusProbe, bearer, stub
from tests.support.hub import HubProcess, free_port, token

pytestmark = pytest.mark.browser

Start = Callable[[dict[str, str]], HubProcess]


@pytest.fixture
def sqlite_hub(tmp_path: Path) -> Iterator[Start]:
    """A hub on SQLite only: what these tests show does not depend on the database."""
    started: list[HubProcess] = []

    def start(env: dict[str, str]) -> HubProcess:
        hub = HubProcess(
            database_url=f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}",
            env=env,
            log_path=tmp_path / "hub.log",
        )
        started.append(hub)
        return hub.start()

    yield start
    for hub in started:
        hub.stop()


async def test_backends_read_as_backend_on_the_page(sqlite_hub: Start, screens: Screens) -> None:
    probe = await BusProbe("redis").open()
    port = free_port()
    try:
        hub = sqlite_hub({**probe.env(), "COMPANION_GRPC_PORT": str(port)})
        page = await screens.open("owner", f"{hub.base_url}/?token={token('newcomer')}")
        sid_el = page.get_by_test_id("session-id")
        await expect(sid_el).not_to_be_empty()
        sid = str(await sid_el.text_content())

        service = {"Authorization": f"Bearer {token('backend1', service=True)}"}
        async with httpx.AsyncClient(base_url=hub.base_url, timeout=10) as http:
            r = await http.post(f"/sessions/{sid}/events", json={"text": "rest"}, headers=service)
            assert r.status_code == 201, r.text
        channel, api = stub(port)
        try:
            update = pb.PublishRequest(
                session_id=sid, type="contextual_update", data_json=json.dumps({"text": "rpc"})
            )
            await api.Publish(update, metadata=bearer("orchestrator", service=True))

            async def chunks() -> AsyncIterator[pb.TaskChunk]:
                yield pb.TaskChunk(task_id="t1", content="Checking carriers", session_id=sid)
                yield pb.TaskChunk(task_id="t1", content="...", is_final=True, session_id=sid)

            await api.StreamTask(chunks(), metadata=bearer("orchestrator", service=True))
        finally:
            await channel.close()
        await probe.send({"session_id": sid, "type": "contextual_update", "text": "bus"})

        updates = page.locator("[data-testid=feed-item][data-kind=update]")
        await expect(updates).to_have_count(3)
        for i in range(3):
            await expect(updates.nth(i)).to_have_attribute("data-sender", "backend")
            await expect(updates.nth(i)).to_contain_text("Backend")
        await expect(page.get_by_test_id("message-who")).to_have_text(["Backend"])
        await screens.shot(page, "newcomer-backends", full_page=True)
        screens.console.assert_clean()
    finally:
        await probe.close()


async def test_a_copied_address_says_how_to_get_back_in_and_the_link_twice_is_one_session(
    sqlite_hub: Start, screens: Screens
) -> None:
    hub = sqlite_hub({})
    link = f"{hub.base_url}/?token={token('twice')}"
    first = await screens.open("first", link)
    sid_el = first.get_by_test_id("session-id")
    await expect(sid_el).not_to_be_empty()
    sid = str(await sid_el.text_content())

    # The printed link again, in another tab of the same browser: the same session.
    again = await first.context.new_page()
    await again.goto(link)
    await expect(again.get_by_test_id("session-id")).to_have_text(sid)
    async with httpx.AsyncClient(base_url=hub.base_url, timeout=10) as http:
        sessions = await http.get(
            "/sessions", headers={"Authorization": f"Bearer {token('twice')}"}
        )
    assert [s["session_id"] for s in sessions.json()["sessions"]] == [sid], sessions.text

    # The address bar (no token) pasted on another device: how to get a fresh link.
    copied = await screens.open("copied", first.url)
    message = copied.get_by_test_id("terminal-message")
    await expect(message).to_have_attribute("data-reason", "no_token")
    await expect(message).to_contain_text("for a fresh link")
    await expect(copied.get_by_test_id("link-hint")).to_have_text(
        f"{hub.base_url}/?token=…&session_id={sid}"
    )
    await screens.shot(copied, "newcomer-copied-address")

    # A bookmarked link whose token has expired: who gives a fresh one.
    with screens.console.expecting("WebSocket|4401|401"):
        stale = await screens.open("stale", f"{hub.base_url}/?token={token('twice', ttl=-120)}")
        refusal = stale.get_by_test_id("terminal-message")
        await expect(refusal).to_have_attribute("data-reason", "unauthorized")
        await expect(refusal).to_contain_text("or the app that sent you here, for a fresh link")
    screens.console.assert_clean()
