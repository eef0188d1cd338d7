"""What the chat widget keeps in the visitor's browser, in a real browser: nothing at all
(localStorage, cookies, IndexedDB) before the visitor says yes, when the shop asks, or
sends a first message, when it does not; nothing after a "no" or no answer; and the
visitor's token once they said yes or wrote. The shop's privacy notice is linked."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect
from sqlalchemy import text
from starlette.applications import Starlette
from starlette.responses import HTMLResponse
from starlette.routing import Route

from cybergine.db.engine import Database
from tests.browser.conftest import run_async
from tests.support.server import LiveServer

NOTICE = "https://shop.example/privacy"
DESKTOP = {"width": 1280, "height": 800}

# Everything the page's origin holds that could outlive the tab.
KEPT_IN_BROWSER = """async () => ({
  local: Object.keys(localStorage),
  cookie: document.cookie,
  indexedDB: (await indexedDB.databases()).map((d) => d.name),
})"""


def _widget_key(platform: LiveServer) -> str:
    page = platform.client().get("/demo/store").text
    return page.split('data-assistant="', 1)[1].split('"', 1)[0]


@pytest.fixture
def shop(platform: LiveServer) -> Iterator[LiveServer]:
    """A shop's own site embedding the widget, on another origin than the platform (whose
    own pages, the demo store among them, carry the dashboard's CSRF cookie)."""
    key = _widget_key(platform)

    async def storefront(request: object) -> HTMLResponse:
        return HTMLResponse(
            "<!doctype html><title>A shop</title><h1>A shop</h1>"
            f'<script src="{platform.url}/widget.js" data-assistant="{key}" async></script>'
        )

    with LiveServer(Starlette(routes=[Route("/", storefront)])) as server:
        yield server


def _set_widget(database_url: str, key: str, shop: LiveServer, widget: dict[str, Any]) -> None:
    async def update() -> None:
        database = Database(database_url, pool_size=1)
        try:
            async with database.transaction() as session:
                await session.execute(
                    text(
                        "UPDATE assistants SET widget = CAST(:w AS jsonb),"
                        " allowed_origins = array_append(allowed_origins, :o)"
                        " WHERE widget_key = :k"
                    ),
                    {"w": json.dumps(widget), "k": key, "o": shop.url.rstrip("/")},
                )
        finally:
            await database.dispose()

    run_async(update())


def _kept(page: Page, context: BrowserContext) -> dict[str, Any]:
    kept: dict[str, Any] = page.evaluate(KEPT_IN_BROWSER)
    kept["cookies"] = context.cookies()
    return kept


NOTHING = {"local": [], "cookie": "", "indexedDB": [], "cookies": []}


def _ensure_open(page: Page) -> None:
    # A reload in the same tab reopens the panel by itself.
    launcher = page.get_by_test_id("cg-launcher")
    expect(launcher).to_be_visible()
    if launcher.get_attribute("aria-expanded") == "false":
        launcher.click()
    expect(page.get_by_test_id("cg-panel")).to_be_visible()


def _open_widget(context: BrowserContext, shop: LiveServer) -> Page:
    page = context.new_page()
    page.goto(shop.url)
    _ensure_open(page)
    return page


def test_asked_for_consent_the_widget_keeps_nothing_until_yes(
    chromium: Browser, platform: LiveServer, shop: LiveServer, database_url: str
) -> None:
    key = _widget_key(platform)
    _set_widget(database_url, key, shop, {"ask_consent": True, "privacy_notice_url": NOTICE})
    context = chromium.new_context(viewport=DESKTOP)

    # Undecided: the question is shown, the shop's notice is linked, nothing is kept.
    page = _open_widget(context, shop)
    expect(page.get_by_test_id("cg-consent")).to_be_visible()
    notice = page.get_by_test_id("cg-privacy-notice")
    expect(notice).to_have_attribute("href", NOTICE)
    expect(notice).to_have_attribute("target", "_blank")
    assert _kept(page, context) == NOTHING
    page.reload()
    _ensure_open(page)
    expect(page.get_by_test_id("cg-consent")).to_be_visible()
    assert _kept(page, context) == NOTHING

    # No: the visitor can chat, and still nothing is kept, even after writing.
    page.get_by_test_id("cg-consent-no").click()
    expect(page.get_by_test_id("cg-input")).to_be_visible()
    page.get_by_test_id("cg-input").fill("Do you ship to Belgium?")
    page.get_by_test_id("cg-send").click()
    expect(page.locator('[data-testid="cg-message"][data-pending="true"]')).to_have_count(
        0, timeout=10_000
    )
    assert _kept(page, context) == NOTHING
    page.close()

    # Yes, in a fresh browser profile: the token is kept, and the choice with it.
    context.close()
    context = chromium.new_context(viewport=DESKTOP)
    page = _open_widget(context, shop)
    page.get_by_test_id("cg-consent-yes").click()
    kept = _kept(page, context)
    assert sorted(kept["local"]) == [f"cybergine.{key}.consent", f"cybergine.{key}.token"]
    assert (kept["cookie"], kept["indexedDB"], kept["cookies"]) == ("", [], [])
    assert page.evaluate(f"localStorage.getItem('cybergine.{key}.consent')") == "yes"
    context.close()


def test_not_asked_the_widget_keeps_the_token_from_the_first_message(
    chromium: Browser, platform: LiveServer, shop: LiveServer, database_url: str
) -> None:
    key = _widget_key(platform)
    _set_widget(database_url, key, shop, {"ask_consent": False})
    context = chromium.new_context(viewport=DESKTOP)
    page = _open_widget(context, shop)
    expect(page.get_by_test_id("cg-consent")).to_be_hidden()
    expect(page.get_by_test_id("cg-privacy-notice")).to_have_count(0)  # none set
    assert _kept(page, context) == NOTHING

    page.get_by_test_id("cg-input").fill("What is your return policy?")
    page.get_by_test_id("cg-send").click()
    page.wait_for_function(f"localStorage.getItem('cybergine.{key}.token') !== null")
    kept = _kept(page, context)
    assert kept["local"] == [f"cybergine.{key}.token"]
    assert (kept["cookie"], kept["indexedDB"], kept["cookies"]) == ("", [], [])

    # The next page, once the message is stored (the token is kept as it is sent, and a
    # reload before the server answers would take the message with it), resumes the
    # same chat from what was kept.
    expect(page.locator('[data-testid="cg-message"][data-pending="true"]')).to_have_count(
        0, timeout=10_000
    )
    page.reload()
    _ensure_open(page)
    expect(page.locator('[data-testid="cg-message"][data-sender="customer"]')).to_have_count(1)
    context.close()
