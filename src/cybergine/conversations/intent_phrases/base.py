"""The shape of one language's phrases for the intent detector (``intents.py``).

Patterns are regular expressions over normalised text: lower case, no accents, words
separated by single spaces. Each language gives:
- handoff / review: phrases matched anywhere, on word boundaries;
- bare / bare_review: what a message may consist of (with fillers around it);
- fillers: politeness and greetings allowed around a bare request;
- negation: the end of a clause that cancels a phrase right after it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Phrases:
    """What one language says when it asks for a person or for a human review."""

    handoff: tuple[str, ...]
    review: tuple[str, ...]
    bare: tuple[str, ...]
    bare_review: tuple[str, ...]
    fillers: tuple[str, ...]
    negation: str


def negation(negators: str, desire: str, particle: str, identity: str) -> str:
    """The end of a clause that cancels a phrase right after it: a negator, optionally
    followed by a verb of wanting and a particle, or a question about who is talking."""
    return (
        rf"(?:^| )(?:(?:{negators})(?: (?:{desire}))?(?: (?:{particle}))?"
        rf"|(?:{identity})(?: \w+){{0,2}})$"
    )
