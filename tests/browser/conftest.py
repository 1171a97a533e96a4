"""A headless Chromium (Debian's, not Playwright's download) and the e2e reference server."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import Browser, async_playwright

from tests.e2e.conftest import RunningServer, embedded_settings, running

__all__ = ["browser", "chromium", "server"]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    """The reference server on the embedded backends."""
    async with running(embedded_settings(tmp_path)) as srv:
        yield srv


CHROMIUM = Path(os.environ.get("CHATCORE_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def chromium() -> Path:
    """Chromium at $CHATCORE_CHROMIUM (default /usr/bin/chromium); a missing one fails."""
    if not CHROMIUM.exists():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: apt-get install chromium, or set CHATCORE_CHROMIUM"
        )
    return CHROMIUM


@pytest.fixture
async def browser(chromium: Path) -> AsyncIterator[Browser]:
    """A headless browser for one test; each user gets a context of their own."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(chromium), args=CHROMIUM_ARGS
        )
        try:
            yield browser
        finally:
            await browser.close()
