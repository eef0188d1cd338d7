"""Product cards in a message, read back for the channels, the inbox and the export.

An answer that shows products carries them in ``messages.payload["products"]`` (built by
the catalogue's search, one card per product: id, title, url, image_url, price, currency,
compare_at_price, available, variant), beside a plain-text rendering of the same answer
in ``messages.text``. Every reader goes through :func:`cards_of`, which is the one place
that decides what of a stored card may be shown:

- at most :data:`MAX_CARDS` cards (WhatsApp's list holds ten rows; the widget shows ten);
- only absolute http(s) links and images (no ``javascript:``, ``data:`` or relative URLs);
- a product is shown as available only when the card says ``available: true``: anything
  else (missing, ``"yes"``, null) reads as out of stock;
- a compare-at price only when it is higher than the price (a "was" price that is not
  higher would be a false discount);
- a card without an id or a title is dropped rather than shown half-empty.

Pure: no session, no settings.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

MAX_CARDS = 10
# A product offered as a choice (a WhatsApp list row) comes back with this id: the prefix
# tells a product apart from other choices (the handoff button, a list of the team's own).
PRODUCT_CHOICE_PREFIX = "cybergine:product:"
_CURRENCY = re.compile(r"[A-Z]{3}")
_TEXT_LIMIT = 500  # longer titles and variants are cut: a card is a glance, not a page
_URL_LIMIT = 2048


@dataclass(frozen=True)
class ProductCard:
    id: str
    title: str
    url: str | None
    image_url: str | None
    price: str | None  # a decimal string, as the catalogue wrote it ("49.90")
    currency: str | None  # ISO 4217 ("EUR")
    compare_at_price: str | None  # only when higher than ``price``
    available: bool
    variant: str | None  # e.g. "42 / Black"

    @property
    def choice_id(self) -> str:
        return PRODUCT_CHOICE_PREFIX + self.id

    def price_text(self) -> str:
        """The price as plain text, "49.90 EUR" (channels without the reader's locale)."""
        if self.price is None:
            return ""
        return f"{self.price} {self.currency}" if self.currency else self.price

    def view(self) -> dict[str, Any]:
        """The card as JSON for a client (the widget): checked values only."""
        return {
            "id": self.id,
            "title": self.title,
            "url": self.url,
            "image_url": self.image_url,
            "price": self.price,
            "currency": self.currency,
            "compare_at_price": self.compare_at_price,
            "available": self.available,
            "variant": self.variant,
        }


def cards_of(payload: Mapping[str, Any] | None) -> list[ProductCard]:
    """The product cards of a message's payload that may be shown, in order."""
    products = (payload or {}).get("products")
    if not isinstance(products, list):
        return []
    cards = [card for card in (_card(item) for item in products) if card is not None]
    return cards[:MAX_CARDS]


def chosen_product_id(choice_id: str | None) -> str | None:
    """The product id a tapped choice names, or None when it names no product."""
    if not choice_id or not choice_id.startswith(PRODUCT_CHOICE_PREFIX):
        return None
    product_id = choice_id[len(PRODUCT_CHOICE_PREFIX) :]
    return product_id or None


def _card(item: Any) -> ProductCard | None:
    if not isinstance(item, Mapping):
        return None
    product_id = _text(item.get("id"))
    title = _text(item.get("title"))
    if product_id is None or title is None:
        return None
    price = _decimal(item.get("price"))
    compare_at = _decimal(item.get("compare_at_price"))
    if price is None or compare_at is None or Decimal(compare_at) <= Decimal(price):
        compare_at = None
    currency = item.get("currency")
    return ProductCard(
        id=product_id[:100],
        title=title[:_TEXT_LIMIT],
        url=web_url(item.get("url")),
        image_url=web_url(item.get("image_url")),
        price=price,
        currency=currency if isinstance(currency, str) and _CURRENCY.fullmatch(currency) else None,
        compare_at_price=compare_at,
        available=item.get("available") is True,
        variant=(_text(item.get("variant")) or "")[:_TEXT_LIMIT] or None,
    )


def web_url(value: Any) -> str | None:
    """``value`` when it is an absolute http(s) URL a browser may open, else None."""
    if not isinstance(value, str) or len(value) > _URL_LIMIT:
        return None
    if not re.match(r"https?://[^\s/?#]+", value, re.IGNORECASE) or re.search(r"\s", value):
        return None
    return value


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = " ".join(value.split())
    return value or None


def _decimal(value: Any) -> str | None:
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        return None
    if not number.is_finite() or number < 0:
        return None
    return str(value)


__all__ = [
    "MAX_CARDS",
    "PRODUCT_CHOICE_PREFIX",
    "ProductCard",
    "cards_of",
    "chosen_product_id",
    "web_url",
]
