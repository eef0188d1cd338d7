"""Payment card numbers found in text, and text with them masked to their last four
digits (privacy policy §12: card numbers typed by customers are never stored).

A card number is 13 to 19 digits that pass the Luhn check, written in one piece or in
groups separated by a space or a dash ("4242 4242 4242 4242", "3782-822463-10005").
Not a card number: a run that fails Luhn (most order, tracking and phone numbers), a
number written after a "+" (an international phone number), and digits glued to letters
("A4242424242424242" is a reference, not something typed as a card).

Pure: no I/O, no settings. Linear in the length of the text, whatever it holds: one
regular-expression pass with no backtracking finds the runs of digits long enough to
hold a card, and each run is tried as at most ``_MAX_GROUPS`` groups from each group on,
with O(1) Luhn sums from prefix sums.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from itertools import accumulate
from typing import Any

__all__ = [
    "CardNumber",
    "find_card_numbers",
    "luhn_valid",
    "mask_card_numbers",
    "mask_card_numbers_in",
    "masked_card",
]

MIN_DIGITS = 13
MAX_DIGITS = 19
# Cards are written in at most five groups (4-4-4-4-3); six leaves room for a stray split.
_MAX_GROUPS = 6
# Between groups: a space, a no-break or thin space, or a dash (hyphen, minus, en dash),
# once or twice ("4242 - 4242" aside, people type one).
_SEPARATOR = "[ \\-\u00a0\u2009\u202f\u2010\u2011\u2012\u2013\u2212]"
# A run of digit groups holding at least MIN_DIGITS digits. Digits and separators are
# disjoint, so each character has one way to match and the scan never backtracks far.
_RUN = re.compile(rf"\d(?:{_SEPARATOR}{{0,2}}\d){{{MIN_DIGITS - 1},}}")
_GROUP = re.compile(r"\d+")
# Luhn: a doubled digit counts as the digit sum of its double.
_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def masked_card(last_four: str) -> str:
    """What a card number becomes; the one wording of a masked card."""
    return f"[card ending {last_four}]"


@dataclass(frozen=True)
class CardNumber:
    start: int  # span in the text, separators included
    end: int
    digits: str  # the digits alone, as typed (ASCII or another script's decimals)

    @property
    def last_four(self) -> str:
        return self.digits[-4:]


def luhn_valid(digits: str) -> bool:
    """Whether a string of decimal digits passes the Luhn check."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        total += _DOUBLED[value] if position % 2 else value
    return total % 10 == 0


def find_card_numbers(text: str) -> Iterator[CardNumber]:
    """Every card number in ``text``, in order, not overlapping."""
    for run in _RUN.finditer(text):
        groups = [m.span() for m in _GROUP.finditer(text, run.start(), run.end())]
        # Digits glued to a word, or a number after "+", belong to something else.
        if run.start() > 0 and (text[run.start() - 1] == "+" or _is_word(text[run.start() - 1])):
            groups = groups[1:]
        if run.end() < len(text) and _is_word(text[run.end()]):
            groups = groups[:-1]
        # A group too long for a card is no part of one: it splits the run.
        segment: list[tuple[int, int]] = []
        for group in (*groups, None):
            if group is not None and group[1] - group[0] <= MAX_DIGITS:
                segment.append(group)
            elif segment:
                yield from _cards_among(text, segment)
                segment = []


def mask_card_numbers(text: str) -> str:
    """``text`` with each card number replaced by :func:`masked_card` of its last four."""
    if len(text) < MIN_DIGITS:
        return text
    parts: list[str] = []
    last = 0
    for card in find_card_numbers(text):
        parts.append(text[last : card.start])
        parts.append(masked_card(card.last_four))
        last = card.end
    if not parts:
        return text
    parts.append(text[last:])
    return "".join(parts)


def _no_key(key: str) -> bool:
    return False


def mask_card_numbers_in(value: Any, *, keep: Callable[[str], bool] = _no_key) -> Any:
    """A JSON-like value (dicts, lists, strings, numbers) with every string masked,
    except the values of the keys ``keep`` accepts (identifiers that nobody types, such
    as a phone number id, which a card-like pattern must not garble). Mappings come back
    as new dicts and lists as new lists; the input is left as it was."""
    if isinstance(value, str):
        return mask_card_numbers(value)
    if isinstance(value, Mapping):
        return {k: v if keep(k) else mask_card_numbers_in(v, keep=keep) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_card_numbers_in(v, keep=keep) for v in value]
    return value


def _cards_among(text: str, groups: list[tuple[int, int]]) -> Iterator[CardNumber]:
    """The card numbers in consecutive groups of digits of one run."""
    digits = "".join(text[a:b] for a, b in groups)
    values = list(map(int, digits))
    doubled = [_DOUBLED[v] for v in values]
    # Prefix sums for O(1) Luhn of any span: in sums[p], digits at positions of parity p
    # count as they are and the others doubled, as when the span's last digit has parity p.
    sums = []
    for parity in (0, 1):
        terms = doubled[:]
        terms[parity::2] = values[parity::2]
        sums.append(list(accumulate(terms, initial=0)))

    def luhn(a: int, b: int) -> bool:  # digits[a:b]; its last digit is never doubled
        kept = sums[(b - 1) % 2]
        return (kept[b] - kept[a]) % 10 == 0

    offsets = list(accumulate((b - a for a, b in groups), initial=0))
    first = 0
    while first < len(groups):
        found = None
        if offsets[min(len(groups), first + _MAX_GROUPS)] - offsets[first] < MIN_DIGITS:
            first += 1  # too few digits from here on to hold a card
            continue
        # Longest first: "4242 4242 4242 4242 424" is one 19-digit number, not 16 + 3.
        for last in range(min(len(groups), first + _MAX_GROUPS) - 1, first - 1, -1):
            count = offsets[last + 1] - offsets[first]
            if MIN_DIGITS <= count <= MAX_DIGITS and luhn(offsets[first], offsets[last + 1]):
                found = last
                break
        if found is None:
            first += 1
            continue
        yield CardNumber(
            start=groups[first][0],
            end=groups[found][1],
            digits=digits[offsets[first] : offsets[found + 1]],
        )
        first = found + 1


def _is_word(char: str) -> bool:
    return char.isalnum() or char == "_"
