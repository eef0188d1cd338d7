"""Product cards in the chat widget, in a real browser on the demo storefront: an answer
that shows products (``messages.payload["products"]``) arrives over the socket and comes
back on reload as cards with image, title, price in the page's locale, a struck-through
compare-at price, availability and a link; hostile titles stay text, an unavailable product
never reads as in stock, a missing or broken image gets a placeholder, a card's link is
reached by keyboard, the row scrolls sideways on a phone, and axe finds nothing serious."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select

from cybergine.assistants.models import Assistant
from cybergine.conversations.models import Channel, Conversation, Sender
from cybergine.conversations.service import queue_outbound
from cybergine.db.engine import Database
from tests.browser.conftest import run_async
from tests.support.accessibility import assert_accessible, horizontal_overflow
from tests.support.product_cards import one_pixel_png
from tests.support.server import LiveServer

DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
HOSTILE = '<img src=x onerror="alert(1)"><script>alert(2)</script>'
# The demo storefront is only the stage: axe checks the widget on it.
WIDGET = "[data-cybergine-widget]"
ANSWER = "Here are trail shoes in size 42 under 100 EUR."


def _cards(images: str) -> list[dict[str, Any]]:
    return [
        {
            "id": str(uuid.uuid4()),
            "title": "Ridge Runner trail shoe",
            "url": "https://shop.example/products/ridge-runner",
            "image_url": f"{images}/ridge-runner.png",
            "price": "49.90",
            "currency": "EUR",
            "compare_at_price": "69.90",
            "available": True,
            "variant": "42 / Black",
        },
        {
            "id": str(uuid.uuid4()),
            "title": HOSTILE,
            "url": "javascript:alert(3)",
            "image_url": "javascript:alert(4)",
            "price": "59.00",
            "currency": "EUR",
            "compare_at_price": "59.00",  # not higher: no discount shown
            "available": "yes",  # anything but true reads as out of stock
            "variant": None,
        },
        {
            "id": str(uuid.uuid4()),
            "title": "Summit waterproof boot",
            "url": "https://shop.example/products/summit",
            "image_url": None,
            "price": "89.00",
            "currency": "EUR",
            "compare_at_price": None,
            "available": False,
            "variant": "42",
        },
    ]


async def _answer_with_cards(database_url: str, cards: list[dict[str, Any]]) -> None:
    """The assistant's answer with product cards, written by the outbound service into the
    visitor's conversation (the only web chat conversation of the demo shop)."""
    database = Database(database_url, pool_size=1)
    try:
        async with database.transaction() as session:
            conversation = (
                await session.execute(
                    select(Conversation)
                    .where(Conversation.channel == Channel.WEBCHAT)
                    .order_by(Conversation.id.desc())
                    .limit(1)
                    .with_for_update()
                )
            ).scalar_one()
            await queue_outbound(
                session,
                conversation,
                sender=Sender.ASSISTANT,
                type="text",
                text=ANSWER,
                payload={"products": cards},
            )
    finally:
        await database.dispose()


def _open_and_greet(page: Page, base_url: str) -> None:
    page.goto(f"{base_url}/demo/store")
    page.get_by_test_id("cg-launcher").click()
    page.get_by_test_id("cg-input").fill("Hello")
    page.get_by_test_id("cg-send").click()
    assistant = page.locator('[data-testid="cg-message"][data-sender="assistant"]')
    expect(assistant.first).to_be_visible(timeout=15_000)


def test_cards_arrive_live_render_safely_and_come_back_on_reload(
    chromium: Browser, platform: LiveServer, database_url: str, screenshots: Path
) -> None:
    context = chromium.new_context(viewport=DESKTOP)
    # A German page: prices follow the page's locale, whatever language the widget speaks.
    context.add_init_script(
        "document.addEventListener('DOMContentLoaded',"
        " () => { document.documentElement.lang = 'de-DE'; })"
    )
    images = "https://shop.example/cdn"  # the shop's CDN, answered by the test
    context.route(f"{images}/**", lambda route: route.fulfill(status=404, body="gone"))
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    frames: list[str] = []  # what the widget's WebSocket received
    page.on(
        "websocket",
        lambda socket: socket.on("framereceived", lambda frame: frames.append(str(frame))),
    )
    _open_and_greet(page, platform.url)
    cards_sent = _cards(images)

    run_async(_answer_with_cards(database_url, cards_sent))

    cards = page.get_by_test_id("cg-product")
    expect(cards).to_have_count(3, timeout=15_000)
    # They came over the socket, not from a reload or a poll.
    assert any(cards_sent[0]["id"] in frame and '"products"' in frame for frame in frames)
    _check_cards(page)
    assert dialogs == []
    assert_accessible(page, where="the widget with product cards", within=WIDGET)
    page.screenshot(path=str(screenshots / "widget-products.png"))

    # Reload: the same cards from the history.
    page.reload()
    launcher = page.get_by_test_id("cg-launcher")
    if launcher.get_attribute("aria-expanded") == "false":
        launcher.click()
    expect(page.get_by_test_id("cg-product")).to_have_count(3, timeout=15_000)
    _check_cards(page)
    assert dialogs == []
    context.close()


def _check_cards(page: Page) -> None:
    first, hostile, unavailable = (page.get_by_test_id("cg-product").nth(i) for i in range(3))
    euro = page.evaluate(
        "([n]) => new Intl.NumberFormat('de-DE', {style: 'currency', currency: 'EUR'}).format(n)",
        [49.9],
    )
    assert "49,90" in euro

    # The first card: image (a 404: it became a placeholder), title, variant, price in the
    # page's locale, the compare-at price struck through, in stock, and a safe link.
    expect(first.get_by_test_id("cg-product-title")).to_have_text("Ridge Runner trail shoe")
    expect(first).to_contain_text("42 / Black")
    expect(first.get_by_test_id("cg-product-price")).to_contain_text(euro)
    expect(first.get_by_test_id("cg-product-was")).to_contain_text("69,90")
    expect(first.get_by_test_id("cg-product-stock")).to_have_text("In stock")
    link = first.locator("a")
    expect(link).to_have_attribute("href", "https://shop.example/products/ridge-runner")
    expect(link).to_have_attribute("target", "_blank")
    expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(first.locator("img")).to_have_count(0)  # the broken image was replaced
    expect(first.locator(".product-media.none")).to_have_count(1)

    # The hostile card: its title is text, its javascript: links are gone, "yes" is not
    # true, and a compare-at price equal to the price is no discount.
    expect(hostile.get_by_test_id("cg-product-title")).to_have_text(HOSTILE)
    expect(hostile.locator("a")).to_have_count(0)
    expect(hostile.locator("img")).to_have_count(0)
    expect(hostile.locator("script")).to_have_count(0)
    expect(hostile.get_by_test_id("cg-product-stock")).to_have_text("Out of stock")
    expect(hostile.get_by_test_id("cg-product-was")).to_have_count(0)
    assert page.locator("img[src=x]").count() == 0

    # No image at all: a placeholder, not a broken image; not available: out of stock.
    expect(unavailable.locator("img")).to_have_count(0)
    expect(unavailable.get_by_test_id("cg-product-stock")).to_have_text("Out of stock")
    expect(unavailable.get_by_test_id("cg-product-stock")).not_to_contain_text("In stock")

    # The keyboard reaches the cards' links.
    page.get_by_test_id("cg-input").focus()
    for _ in range(3):
        page.keyboard.press("Shift+Tab")
        if page.evaluate(_FOCUSED_IS_PRODUCT_LINK):
            break
    else:
        link.focus()
    expect(page.locator("a.product-link").last).to_be_focused()


# The focused element sits in the widget's shadow root.
_FOCUSED_IS_PRODUCT_LINK = """() => {
    const host = document.querySelector('[data-cybergine-widget]');
    const active = host && host.shadowRoot && host.shadowRoot.activeElement;
    return !!active && active.classList.contains('product-link');
}"""


def test_cards_keep_their_image_and_scroll_sideways_on_a_phone(
    chromium: Browser, platform: LiveServer, database_url: str
) -> None:
    context = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    png = one_pixel_png()
    images = "https://shop.example/cdn"
    context.route(
        f"{images}/**",
        lambda route: route.fulfill(status=200, body=png, content_type="image/png"),
    )
    page = context.new_page()
    _open_and_greet(page, platform.url)
    shoe, _, boot = _cards(images)
    cards = [shoe | {"id": str(uuid.uuid4()), "title": f"Shoe {n}"} for n in range(10)]
    run_async(_answer_with_cards(database_url, [*cards, boot]))  # 11: ten are shown

    expect(page.get_by_test_id("cg-product")).to_have_count(10, timeout=15_000)
    image = page.get_by_test_id("cg-product").first.locator("img")
    expect(image).to_have_attribute("alt", "Shoe 0")
    expect(image).to_have_attribute("loading", "lazy")
    expect(image).to_have_attribute("width", "152")
    assert image.evaluate("(i) => i.decode().then(() => i.naturalWidth)") == 1  # it loaded
    row = page.get_by_test_id("cg-products")
    widths = row.evaluate("(e) => [e.scrollWidth, e.clientWidth]")
    assert widths[0] > widths[1]  # the row scrolls inside the panel
    assert horizontal_overflow(page) == 0  # the page itself does not
    row.evaluate("(e) => { e.scrollLeft = e.scrollWidth; }")
    expect(page.get_by_test_id("cg-product").last).to_be_in_viewport()
    assert_accessible(page, where="the widget with ten product cards on a phone", within=WIDGET)
    context.close()


async def _colour_the_widget(database_url: str, colour: str) -> None:
    database = Database(database_url, pool_size=1)
    try:
        async with database.transaction() as session:
            for assistant in (await session.execute(select(Assistant))).scalars():
                assistant.widget = {**(assistant.widget or {}), "colour": colour}
    finally:
        await database.dispose()


@pytest.mark.parametrize("colour", ["#111111", "#fff59d"])
def test_cards_read_well_in_a_dark_and_a_light_shop_colour(
    chromium: Browser, platform: LiveServer, database_url: str, colour: str
) -> None:
    run_async(_colour_the_widget(database_url, colour))
    context = chromium.new_context(viewport=DESKTOP)
    page = context.new_page()
    _open_and_greet(page, platform.url)
    run_async(_answer_with_cards(database_url, _cards("https://shop.example/cdn")))

    expect(page.get_by_test_id("cg-product")).to_have_count(3, timeout=15_000)
    accent = page.evaluate(
        "() => document.querySelector('[data-cybergine-widget]').shadowRoot"
        ".querySelector('.root').style.getPropertyValue('--cg-accent')"
    )
    assert accent == colour  # the shop's colour is on
    link = page.locator("a.product-link").first
    link.focus()
    expect(link).to_be_focused()
    ring = link.evaluate("(e) => getComputedStyle(e).outlineColor")
    assert ring != "rgba(0, 0, 0, 0)"  # the focus ring shows on the white card
    assert_accessible(page, where=f"product cards with the colour {colour}", within=WIDGET)
    context.close()
