"""An answer with product cards, as WhatsApp messages (Graph API request bodies).

Several products go as an interactive list (Meta's ``interactive`` type ``list``: the
answer as the body, one section, one row per product: the title cut to 24 characters, the
price and availability as the 72-character description, our product id as the row id).
List rows carry neither links nor images, so:

- the links follow in **one text message** ("title: URL" lines), only for products whose
  link the answer's text does not already hold (the catalogue's answers usually do).
  Not one image message per product: ten images are ten notifications and ten sends at
  the number's rate, flood a phone's chat, and Meta's docs discourage media by hosted
  link; a shopper scans names and prices in the list and picks one.
- a tap on a row asks for that product (``conversations.product_choice``); the answer to
  it carries one card, which goes as the product's **image with a caption** holding the
  title, price, availability and link (a text with the link when it has no image).

A single product goes the same way as a tap's answer: its image with the answer as the
caption. Pure: no settings, no I/O; the limits are ``messages``' own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cybergine.catalog.search import cards_text
from cybergine.channels.whatsapp import messages as bodies
from cybergine.conversations.product_cards import ProductCard


@dataclass(frozen=True)
class Labels:
    """The words WhatsApp's product messages add around the cards, in one language."""

    button: str  # opens the list: at most 20 characters
    in_stock: str
    out_of_stock: str
    was: str  # before a compare-at price


# By the language the answer names (``payload["language"]``), English otherwise: the
# languages the assistant's product answers speak.
LABELS: dict[str, Labels] = {
    "en": Labels("See products", "in stock", "out of stock", "was"),
    "de": Labels("Produkte ansehen", "auf Lager", "nicht auf Lager", "statt"),
    "fr": Labels("Voir les produits", "en stock", "en rupture de stock", "au lieu de"),
    "es": Labels("Ver productos", "en stock", "agotado", "antes"),
}


def product_bodies(
    to: str,
    text: str,
    cards: Sequence[ProductCard],
    *,
    callback_data: str,
    language: str | None = None,
) -> list[dict[str, Any]]:
    """The bodies of an answer showing ``cards`` (1 to 10), in sending order; the words
    around them in ``language`` (an ISO 639-1 code) when there are some for it."""
    labels = LABELS.get(language or "", LABELS["en"])
    unique: list[ProductCard] = []
    for card in cards:  # a product listed twice is one row (row ids must differ)
        if all(card.id != kept.id for kept in unique):
            unique.append(card)
    if len(unique) == 1:
        return _one(to, text, unique[0], callback_data)
    return _listed(to, text, unique, callback_data, labels)


def row_title(card: ProductCard) -> str:
    return bodies.shorten(card.title, bodies.ROW_TITLE_LIMIT)


def row_description(card: ProductCard, labels: Labels = LABELS["en"]) -> str:
    """ "49.90 EUR (was 69.90) · in stock", after the variant ("42 / Black · …") when all
    of it fits; the price and the availability are never the part cut."""
    price = card.price_text()
    if price and card.compare_at_price:
        price += f" ({labels.was} {card.compare_at_price})"
    stock = labels.in_stock if card.available else labels.out_of_stock
    core = " · ".join(part for part in (price, stock) if part)
    limit = bodies.ROW_DESCRIPTION_LIMIT
    if card.variant:
        room = limit - len(core) - len(" · ")
        if room >= 6:
            return f"{bodies.shorten(card.variant, room)} · {core}"
    return bodies.shorten(core, limit)


def _one(to: str, text: str, card: ProductCard, callback: str) -> list[dict[str, Any]]:
    said = _with_link(text.strip() or _card_text(card), card)
    if card.image_url is None:
        return _texts(to, said, callback, preview=True)  # the shop page's own preview
    if len(said) <= bodies.CAPTION_LIMIT:
        return [bodies.image_body(to, card.image_url, caption=said, callback_data=callback)]
    # A long answer goes first as text; the image then carries the card itself.
    caption = bodies.shorten(_card_text(card), bodies.CAPTION_LIMIT)
    return [
        *_texts(to, text, callback),
        bodies.image_body(to, card.image_url, caption=caption, callback_data=callback),
    ]


def _listed(
    to: str, text: str, cards: Sequence[ProductCard], callback: str, labels: Labels
) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []
    body = text.strip()
    if not body or len(body) > bodies.LIST_BODY_LIMIT:
        # The answer (if any) goes as text first; the list's body then names the products.
        sent.extend(_texts(to, body, callback))
        body = bodies.shorten("\n".join(card.title for card in cards), bodies.LIST_BODY_LIMIT)
    rows = [(card.choice_id, row_title(card), row_description(card, labels)) for card in cards]
    sent.append(bodies.list_body(to, body, labels.button, [("", rows)], callback_data=callback))
    unlinked = [card for card in cards if card.url and card.url not in text]
    if unlinked:
        links = "\n".join(f"{card.title}: {card.url}" for card in unlinked)
        sent.extend(_texts(to, links, callback, preview=True))
    return sent


def _card_text(card: ProductCard) -> str:
    return cards_text([card.view()])


def _with_link(text: str, card: ProductCard) -> str:
    return f"{text}\n{card.url}" if card.url and card.url not in text else text


def _texts(to: str, text: str, callback: str, *, preview: bool = False) -> list[dict[str, Any]]:
    return [
        bodies.text_body(to, part, preview_url=preview, callback_data=callback)
        for part in bodies.split_text(text)
    ]


__all__ = ["LABELS", "Labels", "product_bodies", "row_description", "row_title"]
