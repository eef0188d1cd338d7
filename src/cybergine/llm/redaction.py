"""Redaction of personal data before text leaves for an external LLM (privacy policy §7:
data sent to LLM providers is for generation only, and no more than needed).

E-mail addresses, phone numbers and card-like numbers are replaced by typed placeholders
(``[email 1]``, ``[phone 1]``, ``[card 1]``); the same value gets the same placeholder
within one conversation, so the model can still refer to "the address you gave". The
mapping stays on our side and can put the originals back into the model's reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from cybergine.privacy.card_numbers import find_card_numbers

_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63})+")
# International or national numbers: an optional +, then 7-15 digits with common
# separators (spaces, dots, hyphens, parentheses).
_PHONE = re.compile(r"(?<![\w+])\+?\(?\d(?:[\s.()-]{0,2}\d){6,14}(?!\w)")
# Dates look like phone numbers to the pattern above; they are not personal data.
_DATE = re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}|\d{1,2}[-./]\d{1,2}[-./]\d{2,4}")


@dataclass
class Redactor:
    """One per conversation: placeholders stay stable across its turns."""

    placeholders: dict[str, str] = field(default_factory=dict)
    _counts: dict[str, int] = field(default_factory=dict)

    def _placeholder(self, kind: str, value: str) -> str:
        key = f"{kind}:{value}"
        if key not in self.placeholders:
            self._counts[kind] = self._counts.get(kind, 0) + 1
            self.placeholders[key] = f"[{kind} {self._counts[kind]}]"
        return self.placeholders[key]

    def redact(self, text: str) -> str:
        text = _EMAIL.sub(lambda m: self._placeholder("email", m.group(0).lower()), text)

        parts, last = [], 0
        for card in find_card_numbers(text):  # what a card number is: one rule, privacy's
            parts += [text[last : card.start], self._placeholder("card", card.digits)]
            last = card.end
        text = "".join([*parts, text[last:]])

        def phone(match: re.Match[str]) -> str:
            if _DATE.fullmatch(match.group(0).strip()):
                return match.group(0)
            digits = re.sub(r"\D", "", match.group(0))
            if 7 <= len(digits) <= 15:
                return self._placeholder("phone", digits)
            return match.group(0)

        return _PHONE.sub(phone, text)

    def redact_values(self, value: Any) -> Any:
        """Every string in a JSON-like value (a tool call's arguments) redacted."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, dict):
            return {k: self.redact_values(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.redact_values(v) for v in value]
        return value

    def restore(self, text: str) -> str:
        """Put e-mail addresses and phone numbers back into a reply (card numbers never
        go back: a reply has no reason to repeat one)."""
        for key, placeholder in self.placeholders.items():
            kind, value = key.split(":", 1)
            if kind != "card":
                text = text.replace(placeholder, value)
        return text
