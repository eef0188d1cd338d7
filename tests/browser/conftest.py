"""Browser tests: Debian's Chromium driven by Playwright (nothing is downloaded), against
the real server with its in-process job worker, on the demo shop.

Without a Chromium on the machine the tests are skipped locally; in CI (``CI`` set) a
missing browser is an error, since `.ci/run` installs it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
from collections.abc import Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect, sync_playwright

from cybergine.db.engine import Database
from cybergine.demo import seed_demo
from cybergine.settings import Settings
from tests.support.factories import PASSWORD
from tests.support.jobs import run_jobs
from tests.support.server import LiveServer

T = TypeVar("T")

SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str | None:
    return (
        os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    )


# Package-scoped: one driver and one Chromium for the browser files a worker runs one
# after another (each test still opens contexts of its own), stopped when the worker
# leaves this package. It must not outlive it: Playwright's sync API runs an event loop
# in this thread while it is started, and the async tests of other packages need it gone.
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    if _chromium() is None:
        if os.environ.get("CI"):
            pytest.fail("Chromium is missing: `.ci/run` installs Debian's chromium package")
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def chromium(playwright: Playwright) -> Iterator[Browser]:
    browser = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_FLAGS)
    yield browser
    browser.close()


@pytest.fixture(autouse=True)
def _contexts_closed_after_each_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """The browser outlives a test: whatever contexts a test left open (pages polling or
    holding sockets) are closed when it ends, so the next test starts from none."""
    yield
    if "chromium" in request.fixturenames:
        browser: Browser = request.getfixturevalue("chromium")
        for context in browser.contexts:
            context.close()


def sign_in(page: Page, base_url: str, email: str, password: str = PASSWORD) -> None:
    """Signs in through the sign-in page, as a person does, and waits for the dashboard."""
    page.goto(f"{base_url}/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("navigation", name="Main")).to_be_visible()


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run async set-up code from a browser test: Playwright's sync API owns this
    thread's event loop, so the coroutine gets a loop of its own in another thread."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


@pytest.fixture
def demo(database_url: str, settings: Settings) -> str:
    """The demo shop, seeded and indexed; returns its organisation id."""

    async def seed() -> str:
        database = Database(database_url, pool_size=2)
        try:
            async with database.transaction() as session:
                seeded = await seed_demo(session)
            await run_jobs(database, settings)
            return seeded.organisation_id
        finally:
            await database.dispose()

    return run_async(seed())


@pytest.fixture
def platform(settings: Settings, demo: str) -> Iterator[LiveServer]:
    """The app as `cybergine serve` runs it: with its in-process worker."""
    from cybergine.app import create_app

    with LiveServer(create_app(settings, run_worker=True)) as server:
        yield server


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the browser tests save the pages they show: the README's screenshots when
    CYBERGINE_TEST_SCREENSHOTS=update, a scratch folder otherwise (a test run changes no
    tracked file)."""
    if os.environ.get("CYBERGINE_TEST_SCREENSHOTS") == "update":
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return SCREENSHOTS
    return tmp_path_factory.mktemp("screenshots")
