"""Reading a product question without a language model: "do you have waterproof trail
shoes under 100 EUR in size 42?" is the words "waterproof trail shoes", at most 100 EUR,
an option value "42" under an option named like "size", and in stock (asking whether the
shop *has* something asks for what can be ordered).

Two steps, so the catalogue is asked only what it must be: :func:`candidate_values` lists
the question's words and short phrases that could be option values; the caller keeps
those the catalogue really has (``catalog.search.known_option_values``) and
:func:`parse` reads the question with them. The phrases are data
(``intent_phrases.products``), in English and the assistant's languages. Pure: no
database, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from cybergine.catalog.search import OptionFilter, ProductFilters, option_key
from cybergine.conversations.intent_phrases.products import (
    CURRENCIES,
    OPTION_NAMES,
    PHRASES,
    ProductPhrases,
)
from cybergine.conversations.intents import fold, phrase_languages

MAX_QUESTION_CHARS = 1000
MAX_NGRAM = 3
# Each candidate is one index probe of the catalogue (about 0.2 ms at 100,000 products):
# a long message is looked up by its first ones only.
MAX_CANDIDATES = 200

_SIGNS = "|".join(
    re.escape(k) for k in sorted(CURRENCIES, key=len, reverse=True) if not k.isalpha()
)
_WORDS = "|".join(k for k in sorted(CURRENCIES, key=len, reverse=True) if k.isalpha())
_TOKEN = re.compile(r"[\w][\w'.,/-]*[\w]|[\w]")


def _amount(p: str) -> str:
    """An amount with its currency before or after it ("100 eur", "€49,90", "80€"); its
    groups are named with the prefix ``p``."""
    return (
        rf"(?:(?P<{p}pre>{_SIGNS})\s?)?(?P<{p}num>\d{{1,9}}(?:[.,]\d{{1,2}})?)"
        rf"(?:\s?(?P<{p}post>{_SIGNS}|(?:{_WORDS})(?!\w)))?"
    )


def _alternation(patterns: Sequence[str]) -> str:
    return "|".join(f"(?:{p})" for p in patterns)


@dataclass(frozen=True)
class ProductQuestion:
    words: str  # what is looked for, once prices, stock and option values are taken out
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    currency: str | None = None
    in_stock: bool = False
    options: tuple[OptionFilter, ...] = ()
    asks: bool = False  # phrased as asking for products ("do you have", "je cherche")
    language: str = "en"  # of the phrases that matched: the answer's

    @property
    def constrained(self) -> bool:
        """Whether it says something only a product question says: a price, stock or an
        option value of the catalogue."""
        return (
            self.min_price is not None
            or self.max_price is not None
            or self.in_stock
            or bool(self.options)
        )

    @property
    def about_products(self) -> bool:
        return self.asks or self.constrained

    def filters(self) -> ProductFilters:
        return ProductFilters(
            min_price=self.min_price,
            max_price=self.max_price,
            currency=self.currency,
            in_stock=self.in_stock,
            options=self.options,
        )


def _languages(assistant_languages: Sequence[str]) -> list[str]:
    return [code for code in phrase_languages(assistant_languages) if code in PHRASES]


def _folded(text: str) -> str:
    return " ".join(fold(text[:MAX_QUESTION_CHARS]).split())


def candidate_values(text: str) -> list[str]:
    """The words and phrases of up to three words of the question, lower-cased as the
    catalogue keeps option values (``option_key``), and folded (without accents, "ß" as
    "ss"), that could be values."""
    plain = " ".join(option_key(text[:MAX_QUESTION_CHARS]).split())
    found: list[str] = []
    for form in dict.fromkeys((plain, _folded(text))):
        tokens = [t.strip(".,") for t in _TOKEN.findall(form)]
        for size in range(1, MAX_NGRAM + 1):
            for start in range(len(tokens) - size + 1):
                found.append(" ".join(tokens[start : start + size]))
    return list(dict.fromkeys(v for v in found if v))[:MAX_CANDIDATES]


def _decimal(number: str) -> Decimal | None:
    try:
        return Decimal(number.replace(",", "."))
    except InvalidOperation:
        return None


def _currency(match: re.Match[str], prefix: str) -> str | None:
    sign = match.group(f"{prefix}pre") or match.group(f"{prefix}post")
    return CURRENCIES.get(sign.strip()) if sign else None


class _Reader:
    """One question being read: each constraint found is cut out of ``rest``."""

    def __init__(self, text: str, languages: list[str]) -> None:
        self.rest = f" {_folded(text)} "
        self.languages = languages
        self.matched_language: str | None = None
        self.min_price: Decimal | None = None
        self.max_price: Decimal | None = None
        self.currency: str | None = None

    def _take(self, pattern: str, language: str) -> re.Match[str] | None:
        match = re.search(rf"(?<![\w]){pattern}(?![\w])", self.rest)
        if match is None:
            return None
        self.rest = f"{self.rest[: match.start()]} {self.rest[match.end() :]}"
        if language != "en" or self.matched_language is None:
            self.matched_language = language
        return match

    def prices(self, phrases: ProductPhrases, language: str) -> None:
        first, second = phrases.between
        between = self._take(rf"{first}\s+{_amount('a')}\s+{second}\s+{_amount('b')}", language)
        if between is None and self.max_price is None:
            # "50-80 €", "50 to 80 EUR": a range needs a currency to be a price.
            between = self._take(
                rf"{_amount('a')}\s*(?:-|\u2013|to|bis|a)\s*{_amount('b')}", language
            )
            if between is not None and not (_currency(between, "a") or _currency(between, "b")):
                between = None
        if between is not None:
            self.min_price, self.max_price = _decimal(between["anum"]), _decimal(between["bnum"])
            self.currency = self.currency or _currency(between, "a") or _currency(between, "b")
            return
        at_most = self._take(rf"(?:{_alternation(phrases.at_most)})\s+{_amount('a')}", language)
        if at_most is not None:
            self.max_price = _decimal(at_most["anum"])
            self.currency = self.currency or _currency(at_most, "a")
        at_least = self._take(rf"(?:{_alternation(phrases.at_least)})\s+{_amount('a')}", language)
        if at_least is not None:
            self.min_price = _decimal(at_least["anum"])
            self.currency = self.currency or _currency(at_least, "a")

    def any_of(self, patterns: Sequence[str], language: str) -> bool:
        return self._take(_alternation(patterns), language) is not None

    def options(self, known_values: Collection[str]) -> tuple[OptionFilter, ...]:
        names = {name: group for group in OPTION_NAMES.values() for name in group}
        name_pattern = "|".join(re.escape(n) for n in sorted(names, key=len, reverse=True))
        found: list[OptionFilter] = []
        # Longest values first: "navy blue" before "blue".
        for value in sorted(known_values, key=lambda v: (-len(v), v)):
            folded = _folded(value)
            if not folded:
                continue
            named = re.search(
                rf"(?<![\w])(?P<name>{name_pattern})\s*:?\s+{re.escape(folded)}(?![\w])", self.rest
            )
            if named is not None:
                self.rest = f"{self.rest[: named.start()]} {self.rest[named.end() :]}"
                group = names[named["name"]]
                found.append(OptionFilter(value, tuple(dict.fromkeys((*group, named["name"])))))
                continue
            if len(folded) == 1:
                continue  # "m", "s" alone are letters of "I'm", "let's": only "size m"
            bare = re.search(rf"(?<![\w]){re.escape(folded)}(?![\w])", self.rest)
            if bare is not None:
                self.rest = f"{self.rest[: bare.start()]} {self.rest[bare.end() :]}"
                found.append(OptionFilter(value))
        return tuple(found)

    def words(self) -> str:
        stop = frozenset().union(*(PHRASES[code].stop_words for code in self.languages))
        names = {name for group in OPTION_NAMES.values() for name in group}
        kept = [
            token
            for token in re.findall(r"[\w][\w'-]*", self.rest)
            if token not in stop and token not in names and not token.isdigit()
        ]
        return " ".join(kept)


def parse(
    text: str, assistant_languages: Sequence[str], known_values: Collection[str] = ()
) -> ProductQuestion:
    """The product question in ``text``; ``known_values``: those of
    :func:`candidate_values` the catalogue has."""
    languages = _languages(assistant_languages)
    reader = _Reader(text, languages)
    asks_stock = asks = in_stock = False
    for code in languages:
        phrases = PHRASES[code]
        reader.prices(phrases, code)
        if reader.any_of(phrases.in_stock, code):
            in_stock = True
        if reader.any_of(phrases.have, code):
            asks = asks_stock = True
        if reader.any_of(phrases.looking, code):
            asks = True
    options = reader.options(known_values)
    # Nothing matched but words: the answer is in the assistant's first language we have.
    own = [code for tag in assistant_languages for code in _languages([tag]) if code != "en"]
    fallback = next((code for code in own if code in languages), "en")
    return ProductQuestion(
        words=reader.words(),
        min_price=reader.min_price,
        max_price=reader.max_price,
        currency=reader.currency,
        in_stock=in_stock or asks_stock,
        options=options,
        asks=asks,
        language=reader.matched_language or fallback,
    )
