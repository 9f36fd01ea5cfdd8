"""Fixtures for the explorer's browser tests: headless Chromium (Debian's, through
Playwright's ``executable_path``), a live market on loopback, and pages that fail the
test on any console error.

Without Chromium or Playwright these tests skip, except under
``PHANTOM_AUCTION_REQUIRE_BROWSER`` (set by .ci/run), where they fail."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("fastapi", reason="the service extra is not installed")

from .explorer_harness import (
    CHROMIUM_ARGS,
    ConsoleLog,
    Market,
    ServerProcess,
    chromium_path,
)


def _browser_unavailable() -> str | None:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "playwright is not installed (pip install -e '.[dev]')"
    if chromium_path() is None:
        return "Chromium is not installed (bash scripts/ensure-chromium.sh)"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Chromium, for one module: Playwright's sync API keeps an event loop marked as
    running in this thread until it stops, which would break later asyncio tests."""
    reason = _browser_unavailable()
    if reason is not None:
        if os.environ.get("PHANTOM_AUCTION_REQUIRE_BROWSER"):
            raise RuntimeError(f"PHANTOM_AUCTION_REQUIRE_BROWSER is set but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def market(browser: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Market]:
    """A server on a fresh SQLite file with SDK bidders bidding in every auction."""
    del browser  # started first: a missing browser skips before any server starts
    folder = tmp_path_factory.mktemp("explorer")
    server = ServerProcess(
        f"sqlite+aiosqlite:///{folder / 'service.db'}",
        {"AUCTION_RESOURCES_MAX_MESSAGES_PER_SECOND": "10000"},
        log=folder / "server.log",
    )
    server.start()
    made = Market(server)
    try:
        yield made
    finally:
        made.close()
        server.stop()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A 1280 px wide page; the test fails if the page logged any console error."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    made = context.new_page()
    log = ConsoleLog()
    log.attach(made)
    made.console_log = log
    try:
        yield made
    finally:
        context.close()
    assert log.errors == [], log.errors
