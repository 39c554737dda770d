"""The page's token travels in the WebSocket handshake, not the URL (issue 12): the
owner's page and a phone joined by QR code open sockets whose URLs carry no token, the
hub reads each token from the ``bearer.`` subprotocol, and neither the token nor the
join code is in the hub's log."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.async_api import expect

from tests.e2e.conftest import PHONE, Screens
from tests.support.hub import HubFactory, token

pytestmark = pytest.mark.browser


async def test_the_page_connects_with_no_token_in_the_url(
    hub_factory: HubFactory, screens: Screens
) -> None:
    hub = hub_factory()
    hub.access_log = True  # --log-level info: the hub's accepted lines
    hub.start()
    owner = token(f"u-{uuid.uuid4().hex[:8]}")
    desktop = await screens.open("desktop", f"{hub.base_url}/?token={owner}")
    status = desktop.get_by_test_id("connection-status")
    await expect(status).to_have_attribute("data-status", "connected")
    link = desktop.get_by_test_id("join-link")
    await expect(link).to_have_attribute("href", re.compile(r"/join\?token="))
    join_url = str(await link.get_attribute("href"))
    code = join_url.split("token=", 1)[1]
    phone = await screens.open("phone", join_url, PHONE)
    await expect(phone.get_by_test_id("connection-status")).to_have_attribute(
        "data-status", "connected"
    )
    # A reload reconnects with the device's reconnect token, the same way.
    await phone.reload()
    await expect(phone.get_by_test_id("connection-status")).to_have_attribute(
        "data-status", "connected"
    )
    screens.console.assert_clean()
    hub.stop()

    opened = [url for _, url in screens.sockets if "/ws" in url]
    assert {name for name, _ in screens.sockets} == {"desktop", "phone"}
    assert len(opened) >= 3, screens.sockets
    for url in opened:
        assert "token" not in url and owner not in url and code not in url, url
    assert hub.log_path is not None
    log = hub.log_path.read_text()
    accepted = [line for line in log.splitlines() if "companion_ws.ws: accepted" in line]
    assert len(accepted) >= 3, log
    assert all("client=ui" in line and "via=subprotocol" in line for line in accepted)
    assert sum("credential=device" in line for line in accepted) == 2  # join, then reload
    for secret in (owner, code):
        assert secret not in log
    assert owner.split(".")[-1] not in log
