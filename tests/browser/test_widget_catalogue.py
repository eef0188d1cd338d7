"""From the catalogue to the shopper's screen, end to end: the demo shop's products, a
question with a price and a size in the chat widget, and the catalogue's cards in the
answer: the product that fits, in stock, with its image and price; nothing too dear,
unpublished or archived, and a sold-out size never offered as available."""

from __future__ import annotations

import uuid
from pathlib import Path

from playwright.sync_api import Browser, expect
from sqlalchemy import select

from cybergine.db.engine import Database
from tests.browser.conftest import run_async
from tests.browser.test_widget_products import DESKTOP, WIDGET
from tests.support.accessibility import assert_accessible
from tests.support.product_cards import one_pixel_png
from tests.support.server import LiveServer


async def _stock_the_demo_shop(database_url: str, organisation_id: str) -> None:
    """The demo shop's catalogue: the trail shoes the catalogue's tests know."""
    from cybergine.accounts.models import User
    from cybergine.catalog import search_index
    from cybergine.demo import DEMO_OWNER_EMAIL
    from tests.support.catalog import SHOES, add_products, principal_of

    database = Database(database_url, pool_size=1)
    try:
        async with database.transaction() as session:
            owner = (
                await session.execute(select(User).where(User.email == DEMO_OWNER_EMAIL))
            ).scalar_one()
        organisation = uuid.UUID(organisation_id)
        await add_products(database, principal_of(organisation, owner.id, owner.email), SHOES)
        await search_index.embed_pending(database, organisation, None)
    finally:
        await database.dispose()


def test_a_shopper_asks_for_products_and_sees_the_catalogues_cards(
    chromium: Browser, platform: LiveServer, database_url: str, demo: str, screenshots: Path
) -> None:
    run_async(_stock_the_demo_shop(database_url, demo))
    context = chromium.new_context(viewport=DESKTOP)
    png = one_pixel_png()
    context.route(
        "https://cdn.example/**",
        lambda route: route.fulfill(status=200, body=png, content_type="image/png"),
    )
    page = context.new_page()
    page.goto(f"{platform.url}/demo/store")
    page.get_by_test_id("cg-launcher").click()
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
    image = fit.locator("img")
    assert image.evaluate("(i) => i.decode().then(() => i.naturalWidth)") == 1
    # Size 42 of the Ridge is sold out: it is never offered as available.
    ridge = cards.filter(has_text="Ridge Trail Shoe")
    if ridge.count():
        expect(ridge.get_by_test_id("cg-product-stock")).to_have_text("Out of stock")
    assert_accessible(page, where="the widget answering a product question", within=WIDGET)
    context.close()
