"""A product the customer picked from the cards an answer offered them (a WhatsApp list
row: list rows carry neither link nor image, so a tap asks for the product's details).

The product is looked up among the cards the assistant sent in this conversation, newest
first: the customer is answered with what they were shown, and an id that was never
offered to them (a forged reply) finds nothing and is answered as ordinary text.
"""

from __future__ import annotations

import uuid

from cybergine.conversations.models import Message, Sender
from cybergine.conversations.product_cards import ProductCard, cards_of, chosen_product_id
from cybergine.db.tenancy import TenantScope


async def offered_product(
    scope: TenantScope, conversation_id: uuid.UUID, choice_id: str | None
) -> ProductCard | None:
    """The card of the product ``choice_id`` names, as last offered in the conversation."""
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
    return next((card for card in cards_of(message.payload) if card.id == product_id), None)


__all__ = ["offered_product"]
