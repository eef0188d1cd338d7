"""A Shopify shop's storefront in Chromium, end to end: the merchant installs the app (a
session token, token exchange, the organisation and its storefront assistant), the
catalogue syncs, the app metafields are written, the merchant switches the chat embed on,
and the simulated storefront, rendering the theme app extension's block, loads the
platform's widget. A shopper asks for waterproof trail shoes under 100 EUR in size 42 and
gets the in-stock product's card. The shop uninstalls the app: the widget is refused at
once (423), and the storefront loads it no more."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from cybergine.origins import origin_of
from cybergine.settings import Settings
from cybergine.shopify.simulator import ShopifySimulator
from cybergine.shopify.simulator.control import CONTROL
from tests.browser.test_widget_products import DESKTOP, WIDGET
from tests.shopify.app_support import SHOP, settings, shopify
from tests.shopify.storefront_support import eventually, shop_products, storefront_platform
from tests.support.accessibility import assert_accessible
from tests.support.product_cards import one_pixel_png
from tests.support.server import TLS, LiveServer

__all__ = ["settings", "shopify"]

pytestmark = pytest.mark.slow


@pytest.fixture
def platform(settings: Settings, shopify: ShopifySimulator) -> Iterator[LiveServer]:
    with storefront_platform(settings, shopify) as server:
        yield server


def _installed_and_synced(platform: LiveServer, shopify: ShopifySimulator) -> None:
    """The merchant opens the app in the admin: its session token's first request
    installs the shop; then the sync and the metafields job run in the worker."""
    headers = {
        "Authorization": f"Bearer {shopify.session_token(SHOP)}",
        "Accept": "application/json",
    }
    with httpx.Client(base_url=platform.url, timeout=30, verify=TLS) as http:

        def synced() -> bool:
            answer = http.get("/shopify/api/status", headers=headers)
            assert answer.status_code == 200, answer.text
            return bool(answer.json()["sync"]["state"] == "synced")

        eventually(synced, what="the install's full sync")
    eventually(
        lambda: (
            {m.key for m in shopify.shop(SHOP).app_metafields.values()}
            >= {"widget_key", "platform_origin"}
        ),
        what="the app metafields",
    )


def test_the_storefront_embed_shows_the_widget_with_the_shops_products_until_uninstall(
    chromium: Browser, platform: LiveServer, shopify: ShopifySimulator, screenshots: Path
) -> None:
    shopify.seed(SHOP, products=shop_products())
    # The simulated storefront is served from the simulator's own address: that is the
    # shop's primary domain, which the install allows the widget on.
    storefront_origin = origin_of(shopify.base_url)
    assert storefront_origin is not None
    shopify.shop(SHOP).primary_domain_url = storefront_origin
    _installed_and_synced(platform, shopify)
    with httpx.Client(timeout=10, verify=TLS) as http:
        switched = http.post(
            f"{shopify.base_url}{CONTROL}/shops/{SHOP}/app-extensions",
            json={"block": "chat-embed", "active": True},
        )
        assert switched.status_code == 200

    context = chromium.new_context(viewport=DESKTOP)
    png = one_pixel_png()
    context.route(
        "https://cdn.example/**",
        lambda route: route.fulfill(status=200, body=png, content_type="image/png"),
    )
    page = context.new_page()
    page.goto(f"{shopify.shop_url(SHOP)}/storefront")
    expect(page.get_by_role("heading", name="Trail Gear", level=1)).to_be_visible()
    page.get_by_test_id("cg-launcher").click(timeout=20_000)
    page.get_by_test_id("cg-input").fill(
        "Do you have waterproof trail shoes under 100 EUR in size 42?"
    )
    page.get_by_test_id("cg-send").click()

    cards = page.get_by_test_id("cg-product")
    expect(cards.first).to_be_visible(timeout=20_000)
    titles = cards.get_by_test_id("cg-product-title").all_inner_texts()
    assert "Waterproof Trail Running Shoe" in titles
    for title in ("Summit Pro Trail Shoe", "Prototype Trail Shoe", "Old Trail Shoe"):
        assert title not in titles  # too dear, a draft, archived
    fit = cards.filter(has_text="Waterproof Trail Running Shoe")
    expect(fit.get_by_test_id("cg-product-stock")).to_have_text("In stock")
    expect(fit.get_by_test_id("cg-product-price")).to_contain_text("89.90")
    ridge = cards.filter(has_text="Ridge Trail Shoe")
    if ridge.count():  # its size 42 is sold out: never offered as available
        expect(ridge.get_by_test_id("cg-product-stock")).to_have_text("Out of stock")
    assert_accessible(page, where="the widget on a Shopify storefront", within=WIDGET)
    page.screenshot(path=str(screenshots / "shopify-storefront.png"))

    # The shop uninstalls the app: its widget is refused at once (a page still open, a
    # cached one), and the storefront's embed loads it no more.
    key = _widget_key(shopify)
    shopify.uninstall(SHOP)
    eventually(
        lambda: (
            httpx.post(
                f"{platform.url}/widget/v1/session",
                json={"widget_key": key, "visitor_token": None},
                headers={"Origin": storefront_origin},
                timeout=10,
            ).status_code
            == 423
        ),
        what="the widget's refusal after the uninstall",
    )
    page.goto(f"{shopify.shop_url(SHOP)}/storefront")
    expect(page.get_by_role("heading", name="Trail Gear", level=1)).to_be_visible()
    assert page.locator("script[data-assistant]").count() == 0
    expect(page.get_by_test_id("cg-launcher")).to_be_hidden()
    context.close()


def _widget_key(shopify: ShopifySimulator) -> str:
    return next(
        m.value for m in shopify.shop(SHOP).app_metafields.values() if m.key == "widget_key"
    )
