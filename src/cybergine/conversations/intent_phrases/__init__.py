"""The intent detector's phrases, one module per language: data, kept apart from the
matching logic of ``conversations/intents.py``. Each module is plain Python (typed,
checked by mypy, compiled once at import), and a language is added by adding a module and
a line below."""

from __future__ import annotations

from cybergine.conversations.intent_phrases import de, en, es, fr, it, nl, pt
from cybergine.conversations.intent_phrases.base import Phrases

# English first: it always applies, and the order is the order of matching.
LANGUAGES: dict[str, Phrases] = {
    "en": en.PHRASES,
    "fr": fr.PHRASES,
    "de": de.PHRASES,
    "es": es.PHRASES,
    "pt": pt.PHRASES,
    "it": it.PHRASES,
    "nl": nl.PHRASES,
}

__all__ = ["LANGUAGES", "Phrases"]
