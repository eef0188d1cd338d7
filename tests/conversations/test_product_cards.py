"""What of a stored product card may be shown (``conversations.product_cards``): every
channel, the inbox and the widget read cards through these rules."""

from __future__ import annotations

from typing import Any

import pytest

from cybergine.conversations.product_cards import (
    MAX_CARDS,
    PRODUCT_CHOICE_PREFIX,
    cards_of,
    chosen_product_id,
)
from tests.support.product_cards import HOSTILE_TITLE, card


def one(**changes: Any) -> Any:
    [shown] = cards_of({"products": [card(**changes)]})
    return shown


def test_a_card_is_read_as_the_catalogue_wrote_it() -> None:
    shown = one(compare_at_price="69.90", variant="42 / Black")

    assert shown.view() == card(compare_at_price="69.90", variant="42 / Black")
    assert shown.price_text() == "49.90 EUR"
    assert shown.choice_id == PRODUCT_CHOICE_PREFIX + card()["id"]


@pytest.mark.parametrize("available", [False, None, "yes", 1, "true"])
def test_only_true_is_in_stock(available: object) -> None:
    shown = one(available=available)
    assert shown.available is False


@pytest.mark.parametrize("compare_at", ["49.90", "10.00", "NaN", "-1", "abc", None, True])
def test_a_compare_at_price_shows_only_when_higher(compare_at: object) -> None:
    assert one(compare_at_price=compare_at).compare_at_price is None


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "//shop.example/p",
        "/products/p",
        "https://",
        "https://shop.example/a b",
        "https://shop.example/" + "a" * 3000,
        42,
    ],
)
def test_only_absolute_web_links_and_images(url: object) -> None:
    shown = one(url=url, image_url=url)
    assert (shown.url, shown.image_url) == (None, None)


def test_odd_cards_are_dropped_and_ten_are_kept() -> None:
    products = [
        "not a card",
        card(1, title="  "),
        card(2, id=None),
        *[card(n) for n in range(3, 20)],
    ]
    shown = cards_of({"products": products})
    assert len(shown) == MAX_CARDS
    assert shown[0].id == card(3)["id"]
    assert cards_of({"products": "nope"}) == []
    assert cards_of(None) == []


def test_titles_stay_as_written_and_odd_currencies_are_dropped() -> None:
    shown = one(title=HOSTILE_TITLE, currency="euro", price="12")
    assert shown.title == HOSTILE_TITLE  # escaping is the reader's job: text stays text
    assert shown.currency is None
    assert shown.price_text() == "12"


def test_a_choice_names_a_product_only_with_the_prefix() -> None:
    assert chosen_product_id(PRODUCT_CHOICE_PREFIX + "abc") == "abc"
    assert chosen_product_id("cybergine:handoff") is None
    assert chosen_product_id(PRODUCT_CHOICE_PREFIX) is None
    assert chosen_product_id(None) is None
