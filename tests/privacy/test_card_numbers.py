"""Card numbers found and masked in text: what is one, what is not, and time linear in
the length of whatever a customer sends."""

from __future__ import annotations

import time

import pytest

from cybergine.privacy.card_numbers import (
    find_card_numbers,
    luhn_valid,
    mask_card_numbers,
    mask_card_numbers_in,
    masked_card,
)

VISA = "4242424242424242"
AMEX = "378282246310005"
DISCOVER = "6011111111111117"
VISA_13 = "4222222222222"
LONGEST = "4242424242424242428"  # 19 digits


def test_luhn() -> None:
    for valid in (VISA, AMEX, DISCOVER, VISA_13, LONGEST, "79927398713"):
        assert luhn_valid(valid), valid
    for invalid in ("4242424242424241", "378282246310006", "79927398710"):
        assert not luhn_valid(invalid), invalid


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (VISA, "[card ending 4242]"),
        ("4242 4242 4242 4242", "[card ending 4242]"),
        ("4242-4242-4242-4242", "[card ending 4242]"),
        ("4242\u00a04242\u00a04242\u00a04242", "[card ending 4242]"),
        ("3782 822463 10005", "[card ending 0005]"),  # Amex, 4-6-5
        (VISA_13, "[card ending 2222]"),
        ("4242 4242 4242 4242 428", "[card ending 2428]"),  # one 19-digit number
        ("my card is 4242 4242 4242 4242, exp 12/27 cvc 123", None),
        ("Card:4242424242424242.", "Card:[card ending 4242]."),
        ("two: 4242424242424242 and 6011-1111-1111-1117", None),
        # Digits of another script are digits too.
        ("\u0664\u0662\u0664\u0662" * 4, "[card ending \u0664\u0662\u0664\u0662]"),
        # A short number next to the card is not swallowed into it.
        ("4242 4242 4242 4242 2 items", "[card ending 4242] 2 items"),
        ("order 12 4242424242424242", "order 12 [card ending 4242]"),
    ],
)
def test_card_numbers_are_masked_to_their_last_four(text: str, expected: str | None) -> None:
    masked = mask_card_numbers(text)
    if expected is not None:
        assert masked == expected
    assert "4242 4242 4242 4242" not in masked
    assert VISA not in masked.replace(" ", "").replace("-", "")
    assert "60111111" not in masked.replace("-", "")


def test_inside_text_the_rest_is_kept() -> None:
    text = "my card is 4242 4242 4242 4242, exp 12/27 cvc 123"
    assert mask_card_numbers(text) == "my card is [card ending 4242], exp 12/27 cvc 123"
    cards = list(find_card_numbers("a 4242424242424242 b 6011-1111-1111-1117 c"))
    assert [(c.digits, c.last_four) for c in cards] == [(VISA, "4242"), (DISCOVER, "1117")]


@pytest.mark.parametrize(
    "text",
    [
        "order 4242424242424241",  # fails Luhn
        "tracking 1Z999AA10123456784",
        "call me on +44 7700 900123",
        "+4915112345678",  # a phone number that happens to pass Luhn, after "+"
        "+1 555-000-1234",
        "order #100023 ships 2026-12-02",
        "ref A4242424242424242",  # glued to letters: a reference
        "4242424242424242x",
        "424242424242",  # 12 digits: too short
        "42424242424242424242",  # 20 digits in one piece: too long
        "IBAN GB33BUKB20201555555555",
        "1700000000000",  # a timestamp in ms that fails Luhn
        masked_card("4242"),
    ],
)
def test_what_is_not_a_card_number_is_left_alone(text: str) -> None:
    assert mask_card_numbers(text) == text


def test_masking_twice_changes_nothing_more() -> None:
    once = mask_card_numbers("pay with 4242 4242 4242 4242")
    assert mask_card_numbers(once) == once


def test_json_values_are_masked_except_kept_keys() -> None:
    value = {
        "id": VISA,
        "text": {"body": f"card {VISA}"},
        "rows": [{"title": AMEX, "n": 4242424242424242}],
    }
    masked = mask_card_numbers_in(value, keep=lambda key: key == "id")
    assert masked == {
        "id": VISA,
        "text": {"body": "card [card ending 4242]"},
        "rows": [{"title": "[card ending 0005]", "n": 4242424242424242}],
    }
    assert value["text"] == {"body": f"card {VISA}"}  # the input is left as it was


@pytest.mark.parametrize(
    "hostile",
    [
        "1" * 250_000,
        "1 " * 125_000,
        "1-" * 125_000,
        "4242 " * 50_000,
        "1234 " * 50_000,
        ("1" * 12 + "a") * 20_000,
        ("123456789012 " * 20_000),
        "+" + "1 2 " * 62_500,
    ],
    ids=["one-run", "spaced", "dashed", "cards", "groups", "glued", "twelves", "plus"],
)
def test_hostile_digit_strings_take_linear_time(hostile: str) -> None:
    # A quadratic scan of a quarter of a million characters would take hours; linear
    # takes a quarter of a second (the limit leaves room for a busy machine).
    started = time.perf_counter()
    masked = mask_card_numbers(hostile)
    assert time.perf_counter() - started < 5
    assert len(masked) <= len(hostile)
