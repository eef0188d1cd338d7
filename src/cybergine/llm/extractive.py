"""The offline responder: answers by quoting the knowledge base, with no language model.

It is the default when no LLM key is configured. For a Q&A pair it answers with the pair's
answer; for a document, with the sentences of the best passage that share the most words
with the question. Every answer cites its source. Below the grounding thresholds it says
so and offers a person instead of guessing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from cybergine.knowledge.search import MIN_BM25, MIN_SIMILARITY, Hit, grounded

# The grounding threshold is retrieval's (`knowledge.search`), so the dashboard's retrieval
# tester draws the very line the responders apply.
__all__ = [
    "MIN_BM25",
    "MIN_SIMILARITY",
    "Citation",
    "ExtractiveAnswer",
    "answer",
    "best_sentences",
    "grounded",
]

MAX_ANSWER_CHARS = 700

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"[\w']+")
_STOP = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "do",
        "does",
        "for",
        "from",
        "how",
        "i",
        "if",
        "in",
        "is",
        "it",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "so",
        "that",
        "the",
        "their",
        "there",
        "this",
        "to",
        "was",
        "we",
        "what",
        "when",
        "where",
        "which",
        "who",
        "why",
        "will",
        "with",
        "you",
        "your",
    ]
)


@dataclass(frozen=True)
class Citation:
    number: int
    item_id: str
    chunk_id: str
    title: str
    external_id: str | None


@dataclass(frozen=True)
class ExtractiveAnswer:
    body: str
    grounded: bool
    citations: tuple[Citation, ...]
    # "\n\nSource: Title" for channels that show sources inline; empty when ungrounded.
    source_line: str = ""

    @property
    def text(self) -> str:
        return f"{self.body}{self.source_line}"


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1}


def best_sentences(passage: str, question: str, *, limit: int = MAX_ANSWER_CHARS) -> str:
    """The passage's sentences that overlap the question most, in their original order.
    ``passage`` is what a customer may read (`Hit.quote`: no context line)."""
    sentences = [s.strip() for s in _SENTENCE.split(passage) if s.strip()]
    if not sentences:
        return passage.strip()[:limit]
    wanted = _words(question)
    ranked = sorted(
        range(len(sentences)),
        key=lambda i: (-len(_words(sentences[i]) & wanted), i),
    )
    chosen: list[int] = []
    length = 0
    for index in ranked:
        if length + len(sentences[index]) > limit and chosen:
            break
        chosen.append(index)
        length += len(sentences[index]) + 1
        if len(chosen) == 3:
            break
    return " ".join(sentences[i] for i in sorted(chosen))[:limit]


def answer(question: str, hits: Sequence[Hit], *, fallback_message: str) -> ExtractiveAnswer:
    if not hits or not grounded(hits[0]):
        return ExtractiveAnswer(body=fallback_message, grounded=False, citations=())
    best = hits[0]
    # The quote alone: the title is the source line's, never glued onto the answer.
    text = best.quote if best.kind == "qa" else best_sentences(best.quote, question)
    citation = Citation(
        number=1,
        item_id=str(best.item_id),
        chunk_id=str(best.chunk_id),
        title=best.title,
        external_id=best.external_id,
    )
    source = f"\n\nSource: {best.title}" if best.title else ""
    return ExtractiveAnswer(body=text, grounded=True, citations=(citation,), source_line=source)
