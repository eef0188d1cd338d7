"""Product cards an assistant sent, where the team and the customer read them again: the
inbox's conversation shows them compactly (escaped, links http(s) only, stock as it was
said), and the customer's export holds them in the message's payload beside its text."""

from __future__ import annotations

from cybergine.accounts.models import Role
from tests.support.inbox import conversation_of, member, shop_url, signed_in
from tests.support.product_cards import HOSTILE_TITLE, card, send_cards
from tests.support.whatsapp import Shop

ADA = "15550001111"


async def _conversation_with_cards(shop: Shop) -> tuple[str, list[dict[str, object]]]:
    shop.says("Do you have trail shoes?", wa_id=ADA)
    await shop.work()
    cards = [
        card(0, compare_at_price="69.90", variant="42 / Black"),
        card(1, title=HOSTILE_TITLE, url="javascript:alert(3)"),
        card(2, title="Summit boot", available=False, image_url=None),
    ]
    await send_cards(shop.database, shop.organisation_id, cards)
    await shop.work()
    return conversation_of(shop, ADA)["id"], cards


async def test_the_conversation_shows_the_cards_the_customer_saw(shop: Shop) -> None:
    conversation_id, _ = await _conversation_with_cards(shop)
    viewer = await member(shop.database, shop.organisation_id, Role.VIEWER)

    with signed_in(shop_url(shop), viewer) as browser:
        for path in (f"/inbox/{conversation_id}", f"/inbox/{conversation_id}/thread"):
            page = browser.get(path).text
            products = page.split('data-testid="thread-products"', 1)[1].split("</div>", 1)[0]
            items = products.split('data-testid="thread-product"')[1:]
            assert len(items) == 3
            first, hostile, boot = items
            assert (
                '<a href="https://shop.example/products/ridge-runner-0" target="_blank" '
                'rel="noopener noreferrer">Ridge Runner shoe 0</a>'
            ) in first
            assert "(42 / Black)" in first
            assert "49.90 EUR" in first
            assert "<s>69.90</s>" in first
            assert "In stock" in first
            # The hostile title is text; its javascript: link is no link at all.
            assert "&lt;img src=x onerror=" in hostile
            assert "<img src=x" not in page
            assert "javascript:" not in page
            assert "<a " not in hostile
            assert "Out of stock" in boot
            assert "no image" in boot


async def test_the_customers_export_holds_the_cards(shop: Shop) -> None:
    _, cards = await _conversation_with_cards(shop)
    response = shop.api.get("/api/v1/customers", params={"phone_number": f"+{ADA}"})
    [customer] = response.json()

    export = shop.api.get(f"/api/v1/customers/{customer['id']}/export")

    assert export.status_code == 200, export.text
    [conversation] = export.json()["conversations"]
    [shown] = [m for m in conversation["messages"] if (m.get("payload") or {}).get("products")]
    assert shown["payload"]["products"] == cards
    assert shown["text"] == "Here are our trail shoes."
