"""A product the customer picked from the cards an answer offered them (a WhatsApp list
row: list rows carry neither link nor image, so a tap asks for the product's details).

The product is looked up among the cards the assistant sent in this conversation, newest
first: the customer is answered with what they were shown, and an id that was never
offered to them (a forged reply) finds nothing and is answered as ordinary text. Its
stock is read again from the catalogue, since the list may be hours old: a product sold
out since says so, and one deleted or no longer published (or hidden with its shop) is
not shown at all.
"""

from __future__ import annotations

import dataclasses
import uuid

from cybergine.catalog.models import ProductSearchRow, Variant
from cybergine.conversations.models import Message, Sender
from cybergine.conversations.product_cards import ProductCard, cards_of, chosen_product_id
from cybergine.db.tenancy import TenantScope


async def offered_product(
    scope: TenantScope, conversation_id: uuid.UUID, choice_id: str | None
) -> ProductCard | None:
    """The card of the product ``choice_id`` names, as last offered in the conversation,
    with its stock as it is now; None when it was never offered or may not be shown."""
    product_id = chosen_product_id(choice_id)
    if product_id is None:
        return None
    # JSONB containment: the assistant's messages whose cards include this product.
    message = await scope.session.scalar(
        scope.select(Message)
        .where(
            Message.conversation_id == conversation_id,
            Message.sender == Sender.ASSISTANT,
            Message.payload.contains({"products": [{"id": product_id}]}),
        )
        .order_by(Message.id.desc())
        .limit(1)
    )
    if message is None:
        return None
    card = next((card for card in cards_of(message.payload) if card.id == product_id), None)
    return await _as_it_is_now(scope, card) if card is not None else None


async def _as_it_is_now(scope: TenantScope, card: ProductCard) -> ProductCard | None:
    try:
        product_id = uuid.UUID(card.id)
    except ValueError:
        return None
    # Whether the product may be shown at all is the catalogue's own rule, kept in its
    # search row (active and published).
    row = await scope.session.scalar(
        scope.select(ProductSearchRow).where(ProductSearchRow.product_id == product_id)
    )
    if row is None or not row.visible:
        return None
    variants = (
        await scope.session.scalars(scope.select(Variant).where(Variant.product_id == product_id))
    ).all()
    # The variant the card named, or (a card of the product) any of them.
    shown = [v for v in variants if card.variant is None or v.title == card.variant]
    return dataclasses.replace(card, available=any(v.available for v in shown))


__all__ = ["offered_product"]
