import pytest

from cybergine.llm.redaction import Redactor
from cybergine.privacy.card_numbers import luhn_valid


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe+shop@example.co.uk please", "write to [email 1] please"),
        ("call +44 20 7946 0958 today", "call [phone 1] today"),
        ("my number is (555) 123-4567", "my number is [phone 1]"),
        ("card 4111 1111 1111 1111 exp 12/29", "card [card 1] exp 12/29"),
        ("card 4111-1111-1111-1111", "card [card 1]"),
        ("06 12 34 56 78", "[phone 1]"),
    ],
)
def test_personal_data_is_replaced(text: str, expected: str) -> None:
    assert Redactor().redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order #12345 shipped",
        "it costs 49.99 euros",
        "delivered on 2026-11-29 at 10:30",
        "size 42, colour navy",
        "tracking 1Z999AA10123456784",
    ],
)
def test_ordinary_numbers_are_kept(text: str) -> None:
    assert Redactor().redact(text) == text


def test_a_number_failing_luhn_is_not_a_card() -> None:
    assert not luhn_valid("4111111111111112")
    assert "[card" not in Redactor().redact("ref 4111 1111 1111 1112")


def test_the_same_value_keeps_its_placeholder_across_turns() -> None:
    redactor = Redactor()
    first = redactor.redact("I am a@example.com and b@example.com")
    second = redactor.redact("again: A@example.com")
    assert first == "I am [email 1] and [email 2]"
    assert second == "again: [email 1]"


def test_replies_get_contacts_back_but_never_cards() -> None:
    redactor = Redactor()
    redactor.redact("mail me at pat@example.com, card 4111 1111 1111 1111")
    reply = redactor.restore("We wrote to [email 1]; we never store [card 1].")
    assert reply == "We wrote to pat@example.com; we never store [card 1]."
