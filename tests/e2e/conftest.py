"""Browser fixtures: Debian's headless Chromium driven by Playwright (no browser download).

``screens`` gives a test pages in their own browser contexts (a desktop, a phone), each
watched for console errors and uncaught exceptions, and saves screenshots under
``test-artifacts/e2e/<database>/``. A failed test leaves a ``FAILED-<test>-<page>``
screenshot of every page it had open.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Generator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page, async_playwright

from tests.conftest import ARTIFACTS

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}}
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
#: How long a Playwright action or expectation may wait unless a test says otherwise:
#: a bound on waiting on a loaded machine, never a claim about speed.
DEFAULT_TIMEOUT_MS = 15_000
#: A page's titles that its sticky header covers (their text): a restored scroll position
#: must leave none (issue 14).
TITLES_UNDER_HEADER = """() => {
    const bottom = document.querySelector('.topbar').getBoundingClientRect().bottom;
    return [...document.querySelectorAll('.card-head h2, .card .block-title')]
        .filter((t) => { const r = t.getBoundingClientRect();
                         return r.height > 0 && r.top < bottom && r.bottom > 0; })
        .map((t) => t.textContent);
}"""


@dataclass
class Console:
    """Errors the pages logged: ``console.error`` lines and uncaught exceptions.
    ``expecting(pattern)`` allows matching lines for a while (a hub that is down makes
    Chromium log each refused WebSocket connect)."""

    errors: list[str] = field(default_factory=list)
    allowed: list[re.Pattern[str]] = field(default_factory=list)

    def watch(self, name: str, page: Page) -> None:
        def on_console(message: ConsoleMessage) -> None:
            if message.type == "error":
                self._record(f"[{name}] console: {message.text}", message.text)

        page.on("console", on_console)
        page.on("pageerror", lambda exc: self._record(f"[{name}] uncaught: {exc}", str(exc)))

    def _record(self, line: str, text: str) -> None:
        if not any(p.search(text) for p in self.allowed):
            self.errors.append(line)

    @contextlib.contextmanager
    def expecting(self, pattern: str) -> Iterator[None]:
        compiled = re.compile(pattern)
        self.allowed.append(compiled)
        try:
            yield
        finally:
            self.allowed.remove(compiled)

    def assert_clean(self) -> None:
        assert not self.errors, "the pages logged errors:\n" + "\n".join(self.errors)


class Screens:
    """Pages, one browser context each, and their screenshots."""

    def __init__(self, browser: Browser, artifacts: Path, test_name: str) -> None:
        self.browser = browser
        self.artifacts = artifacts
        self.test_name = test_name
        for stale in artifacts.glob(f"FAILED-{test_name}-*.png"):
            stale.unlink()
        self.console = Console()
        self.pages: dict[str, Page] = {}
        self.sockets: list[tuple[str, str]] = []  # (page name, URL) of every WebSocket opened
        self._contexts: list[BrowserContext] = []

    async def open(
        self,
        name: str,
        url: str,
        device: dict[str, Any] = DESKTOP,
        *,
        prepare: Callable[[Page], Awaitable[None]] | None = None,
    ) -> Page:
        """A new context (its own sessionStorage, like another device) showing ``url``;
        ``prepare`` runs on the page before it loads (routes, say)."""
        context = await self.browser.new_context(**device)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        self._contexts.append(context)
        page = await context.new_page()
        self.console.watch(name, page)
        page.on("websocket", lambda ws: self.sockets.append((name, ws.url)))
        self.pages[name] = page
        if prepare is not None:
            await prepare(page)
        await page.goto(url)
        return page

    async def shot(self, page: Page, name: str, *, full_page: bool = False) -> Path:
        """Save what the page shows now (the viewport unless ``full_page``)."""
        path = self.artifacts / f"{name}.png"
        if full_page:
            # Chromium draws a full page at desktop metrics for a moment, where the
            # pointer's last position shows :hover even on a touch screen.
            await page.mouse.move(0, 0)
        await page.screenshot(path=str(path), full_page=full_page, animations="disabled")
        return path

    async def close(self, failed: bool) -> None:
        if failed:
            for name, page in self.pages.items():
                with contextlib.suppress(Exception):
                    await self.shot(page, f"FAILED-{self.test_name}-{name}", full_page=True)
        for context in self._contexts:
            with contextlib.suppress(Exception):
                await context.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.when == "call":
        item.stash[_FAILED] = report.failed
    return report


_FAILED = pytest.StashKey[bool]()


def _artifacts_for(request: pytest.FixtureRequest) -> Path:
    """test-artifacts/e2e/<database>: the ``db_url`` parameter the test runs on."""
    callspec = getattr(request.node, "callspec", None)
    kind = str(callspec.params.get("db_url", "nodb")) if callspec is not None else "nodb"
    path = ARTIFACTS / "e2e" / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    """Headless Debian Chromium; Playwright never downloads a browser here."""
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        try:
            yield launched
        finally:
            await launched.close()


@pytest.fixture
async def screens(browser: Browser, request: pytest.FixtureRequest) -> AsyncIterator[Screens]:
    result = Screens(browser, _artifacts_for(request), request.node.originalname)
    yield result
    await result.close(failed=request.node.stash.get(_FAILED, True))
