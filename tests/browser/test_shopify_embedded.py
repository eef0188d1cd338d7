"""The embedded admin in Chromium, inside the Shopify simulator's admin frame: App Bridge's
session tokens (the simulator's stand-in) install the shop on the page's first request;
the merchant subscribes on Shopify's confirmation page (top-level) and comes back to the
app on the new plan; "Open full dashboard" signs the shop's owner in, top-level."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from cybergine.settings import Settings
from cybergine.shopify.simulator import ShopifySimulator
from tests.shopify.app_support import CLIENT_ID, SHOP, settings, shopify
from tests.support.server import LiveServer

__all__ = ["settings", "shopify"]


@pytest.fixture
def platform(settings: Settings, shopify: ShopifySimulator) -> Iterator[LiveServer]:
    """The app with its in-process worker (webhooks and syncs run), known to the
    simulator as the embedded app's URL and its webhook endpoint."""
    from cybergine.app import create_app

    with LiveServer(create_app(settings, run_worker=True)) as server:
        shopify.app_url = server.url
        shopify.webhooks.url = f"{server.url}/webhooks/shopify"
        yield server


@pytest.fixture
def page(chromium: Browser) -> Iterator[Page]:
    context = chromium.new_context()
    opened = context.new_page()
    yield opened
    context.close()


def open_app(page: Page, shopify: ShopifySimulator) -> None:
    page.goto(f"{shopify.shop_url(SHOP)}/admin/apps/{CLIENT_ID}")


def test_the_embedded_app_installs_the_shop_subscribes_and_opens_the_dashboard(
    page: Page, platform: LiveServer, shopify: ShopifySimulator, screenshots: Path
) -> None:
    open_app(page, shopify)
    app = page.frame_locator("iframe#app")
    expect(app.locator("#message")).to_have_text("Connected.", timeout=20_000)
    expect(app.locator('[data-field="connection.status"]')).to_have_text("installed")
    expect(app.locator('[data-field="billing.plan"]')).to_have_text("Free plan")
    expect(app.locator('[data-field="billing.usage"]')).to_have_text(
        "0 of 50 conversations this month"
    )
    # App Bridge says the embed is available but not on: the page offers the editor.
    expect(app.locator('[data-field="embed.label"]')).to_have_text(
        "The chat is not switched on in your published theme yet."
    )
    editor = app.get_by_role("link", name="Switch the chat on in the theme editor")
    expect(editor).to_have_attribute(
        "href",
        f"https://{SHOP}/admin/themes/current/editor?context=apps"
        f"&activateAppId={CLIENT_ID}/chat-embed",
    )
    page.screenshot(path=str(screenshots / "shopify-embedded.png"))

    # The merchant switches the embed on in the theme editor (the simulated shop's).
    shopify.shop(SHOP).app_embeds["chat-embed"] = True

    # Subscribing: Shopify's confirmation page opens top-level, then the app again.
    app.get_by_role("button", name="Subscribe to Starter").click()
    expect(page.get_by_role("heading", name="Starter")).to_be_visible(timeout=20_000)
    expect(page.get_by_text("(test charge)")).to_be_visible()
    page.get_by_role("button", name="Approve").click()
    app = page.frame_locator("iframe#app")
    expect(app.locator("#message")).to_have_text("Connected.", timeout=20_000)
    # The webhook is processed by the worker; the page shows the plan once it is.
    for _ in range(100):
        if app.locator('[data-field="billing.plan"]').inner_text() == "Starter plan (active)":
            break
        page.reload()
        app = page.frame_locator("iframe#app")
        expect(app.locator("#message")).to_have_text("Connected.", timeout=20_000)
    expect(app.locator('[data-field="billing.plan"]')).to_have_text("Starter plan (active)")
    expect(app.locator('[data-field="embed.label"]')).to_have_text(
        "The chat is on in your published theme."
    )
    expect(app.get_by_role("link", name="Switch the chat on in the theme editor")).to_be_hidden()

    # Into the full dashboard, top-level, signed in as the shop's owner.
    app.get_by_role("button", name="Open full dashboard").click()
    expect(page).to_have_url(f"{platform.url}/", timeout=20_000)
    expect(page.get_by_role("heading", name="Trail Gear", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name=f"Shopify: {SHOP}")).to_be_visible()
    expect(page.get_by_text("Starter plan: 0 of 1000 conversations this month.")).to_be_visible()
    # The embed's state as the embedded app last reported it.
    expect(page.get_by_text("The chat is on in the shop's published theme.")).to_be_visible()
