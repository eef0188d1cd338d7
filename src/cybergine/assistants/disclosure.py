"""Whether an AI disclosure still says the assistant is automated (privacy policy §7:
assistants "are clearly automated systems, not human agents"), in any language the
assistants speak, and the default wording for a new assistant.

A disclosure passes when one of its clauses names the assistant as automated ("AI",
"bot", "künstliche Intelligenz", "asistente virtual", …: ``disclosure_words.py``) and
no word denying it comes just before ("not a bot", "kein Bot", "no es un robot"). Pure:
no database, no settings.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Sequence

from cybergine.assistants.disclosure_words import ACRONYMS, LANGUAGES

__all__ = ["LANGUAGE_NAMES", "default_disclosure", "says_automated"]

# How many words before a term a denial reaches: "you are not chatting with an AI".
NEGATION_REACH = 4
LANGUAGE_NAMES = {
    "en": "English",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "pt": "Portuguese",
    "it": "Italian",
    "nl": "Dutch",
}
_CLAUSE_END = re.compile(r"[.!?;:\n\u3002\uff01\uff1f]+(?:\s|$)")
_WORD = re.compile(r"[^\W_]+")


def default_disclosure(languages: Sequence[str]) -> str:
    """The disclosure in the first of ``languages`` that has one (BCP-47 tags: "pt-BR"
    is Portuguese), else in English."""
    for tag in languages:
        words = LANGUAGES.get(tag.split("-", 1)[0].lower())
        if words is not None:
            return words.default
    return LANGUAGES["en"].default


def says_automated(text: str) -> bool:
    """Whether ``text`` tells the customer, undenied, that the assistant is automated."""
    for clause in _CLAUSE_END.split(text):
        written = _WORD.findall(unicodedata.normalize("NFC", clause))
        folded = [_fold(word) for word in written]
        for start in _mentions(written, folded):
            if not _denied(folded[max(0, start - NEGATION_REACH) : start]):
                return True
    return False


def _mentions(written: list[str], folded: list[str]) -> list[int]:
    """Where the clause names the assistant as automated (index of the first word); a
    term's last word may take a plural "s" ("bots")."""
    found = []
    for i in range(len(folded)):
        if any(tuple(written[i : i + len(term)]) == term for term in _acronyms()):
            found.append(i)
            continue
        for term in _terms():
            last = i + len(term) - 1
            if (
                last < len(folded)
                and tuple(folded[i:last]) == term[:-1]
                and folded[last] in (term[-1], term[-1] + "s")
            ):
                found.append(i)
                break
    return found


def _denied(before: list[str]) -> bool:
    return any(word in _negators() for word in before)


def _fold(word: str) -> str:
    decomposed = unicodedata.normalize("NFKD", word.casefold())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


@functools.cache
def _terms() -> tuple[tuple[str, ...], ...]:
    return tuple({tuple(t.split()) for w in LANGUAGES.values() for t in w.automated})


@functools.cache
def _acronyms() -> tuple[tuple[str, ...], ...]:
    return tuple(tuple(a.split()) for a in ACRONYMS)


@functools.cache
def _negators() -> frozenset[str]:
    return frozenset(n for w in LANGUAGES.values() for n in w.negators)
