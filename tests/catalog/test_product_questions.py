"""The offline responder's reading of product questions, in English, German and French:
price bounds and currencies, stock, the catalogue's option values, and the words left to
search by. Pure: no database."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cybergine.catalog.search import OptionFilter
from cybergine.conversations.product_questions import ProductQuestion, candidate_values, parse

KNOWN = {"42", "black", "schwarz", "noir", "m", "navy blue"}


def _read(text: str, languages: list[str]) -> ProductQuestion:
    known = [value for value in candidate_values(text) if value in KNOWN]
    return parse(text, languages, known)


@pytest.mark.parametrize(
    ("text", "languages", "words", "low", "high", "currency", "language"),
    [
        (
            "do you have waterproof trail shoes under 100 EUR?",
            ["en"],
            "waterproof trail shoes",
            None,
            100,
            "EUR",
            "en",
        ),
        ("running shoes between 50 and 80 €", ["en"], "running shoes", 50, 80, "EUR", "en"),
        ("anything less than $30?", ["en"], "", None, 30, "USD", "en"),
        ("jackets over 200 GBP", ["en"], "jackets", 200, None, "GBP", "en"),
        ("Haben Sie Wanderschuhe unter 100 Euro?", ["de"], "wanderschuhe", None, 100, "EUR", "de"),
        ("Schuhe zwischen 50 und 80 €", ["de-CH"], "schuhe", 50, 80, "EUR", "de"),
        (
            "Avez-vous des chaussures à moins de 100 € ?",
            ["fr"],
            "chaussures",
            None,
            100,
            "EUR",
            "fr",
        ),
        (
            "je cherche une veste entre 49,90 et 80 euros",
            ["fr"],
            "veste",
            Decimal("49.90"),
            80,
            "EUR",
            "fr",
        ),
        ("sandals 20-30 €", ["en"], "sandals", 20, 30, "EUR", "en"),
    ],
)
def test_price_bounds_and_currency(
    text: str,
    languages: list[str],
    words: str,
    low: Decimal | int | None,
    high: Decimal | int | None,
    currency: str,
    language: str,
) -> None:
    question = _read(text, languages)
    assert question.words == words
    assert question.min_price == (Decimal(low) if low is not None else None)
    assert question.max_price == (Decimal(high) if high is not None else None)
    assert question.currency == currency
    assert question.language == language
    assert question.about_products


def test_the_example_question_in_three_languages() -> None:
    for text, languages, words in (
        (
            "do you have waterproof trail shoes under 100 EUR in size 42?",
            ["en"],
            "waterproof trail shoes",
        ),
        (
            "Haben Sie wasserdichte Trailschuhe unter 100 Euro in Größe 42?",
            ["de"],
            "wasserdichte trailschuhe",
        ),
        (
            "Avez-vous des chaussures de trail à moins de 100 € en taille 42 ?",
            ["fr"],
            "chaussures trail",
        ),
    ):
        question = _read(text, languages)
        assert question.words == words, text
        assert question.max_price == Decimal(100)
        assert question.currency == "EUR"
        assert question.in_stock  # asking whether the shop has it asks for stock
        [size] = question.options
        assert size.value == "42"
        assert {"size", "grosse", "taille"} <= set(size.names)


def test_stock_words_and_bare_option_values() -> None:
    question = _read("is the ridge shoe available in black?", ["en"])
    assert question.in_stock
    assert question.options == (OptionFilter("black"),)
    assert question.words == "ridge shoe"
    assert _read("Ist der Schuh in Schwarz auf Lager?", ["de"]).in_stock
    assert _read("la veste noire est-elle en stock ?", ["fr"]).in_stock
    assert _read("je cherche un pull noir", ["fr"]).options == (OptionFilter("noir"),)
    assert _read("show me navy blue jackets", ["en"]).options == (OptionFilter("navy blue"),)


def test_letters_are_values_only_after_an_option_name() -> None:
    assert _read("I'm looking for a shirt", ["en"]).options == ()
    [size] = _read("shirt in size M", ["en"]).options
    assert size.value == "m"


def test_other_languages_apply_only_for_the_assistants_languages() -> None:
    assert _read("Haben Sie Schuhe unter 100 Euro?", ["en"]).max_price is None
    assert _read("Haben Sie Schuhe unter 100 Euro?", ["en", "de"]).max_price == Decimal(100)


@pytest.mark.parametrize(
    "text",
    [
        "How long does shipping take?",
        "What is your return policy?",
        "Wie lange dauert der Versand?",
        "Quels sont vos horaires ?",
    ],
)
def test_questions_not_about_products(text: str) -> None:
    assert not _read(text, ["en", "de", "fr"]).about_products


def test_hostile_text_is_read_without_error() -> None:
    for text in ("\x00" * 10, "(" * 5000, "€" * 2000 + "1" * 2000, "under " * 500 + "9" * 40):
        _read(text, ["en", "de", "fr"])
