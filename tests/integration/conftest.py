"""Fixtures the integration tests share (the hubs themselves are in tests/conftest.py)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.support.hub import HubProcess, token
from tests.support.ws import WS, connect


@pytest.fixture
async def screen(shared_hub: HubProcess) -> AsyncIterator[tuple[WS, str, str]]:
    """A screen of a new user on the module's hub: its socket, session id and token."""
    tok = token(f"u-{uuid.uuid4().hex[:8]}")
    ui = await connect(shared_hub.ws_url, tok)
    yield ui, ui.welcome["session_id"], tok
    await ui.close()


@pytest.fixture
async def clients() -> AsyncIterator[list[Any]]:
    """Where a test puts the clients it makes (anything with ``async close()``): each
    is closed after the test."""
    made: list[Any] = []
    yield made
    for client in made:
        await client.close()
