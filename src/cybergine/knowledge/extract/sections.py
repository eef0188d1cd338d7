"""Text normalisation, and the collector that files text under its heading path while
counting characters against the limit."""

from __future__ import annotations

import re
import unicodedata
from typing import Final

from cybergine.knowledge.extract.document import Section
from cybergine.knowledge.extract.errors import too_many_chars


def _translation_table() -> dict[int, str | None]:
    table: dict[int, str | None] = {}
    for code in [*range(0x20), 0x7F, *range(0x80, 0xA0)]:
        table[code] = None
    del table[ord("\t")], table[ord("\n")]
    for code in (0x0B, 0x0C, 0x0D, 0x85, 0x2028, 0x2029):  # line and page breaks
        table[code] = "\n"
    # A byte-order mark inside the text and soft hyphens (which PDFs leave inside words)
    # only get in the way of search; lone surrogates cannot even be stored.
    table[0xFEFF] = None
    table[0xAD] = None
    for code in range(0xD800, 0xE000):
        table[code] = None
    return table


_TRANSLATION: Final = _translation_table()
_SPACES = re.compile(r"[^\S\n\t]+")
_LINE_EDGES = re.compile(r"[ \t]*\n[ \t]*")
_BLANK_LINES = re.compile(r"\n{3,}")
_ANY_WHITESPACE = re.compile(r"\s+")


def clean(text: str) -> str:
    """NFC, no control characters but newline and tab, single spaces, trimmed lines, at
    most one blank line in a row."""
    text = text.replace("\r\n", "\n").translate(_TRANSLATION)
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    text = _SPACES.sub(" ", text)
    text = _LINE_EDGES.sub("\n", text)
    text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()


def clean_line(text: str) -> str:
    return _ANY_WHITESPACE.sub(" ", clean(text)).strip()


def title_of(text: str | None) -> str | None:
    cleaned = clean_line(text or "")[:500]
    return cleaned or None


class Sections:
    """Collects blocks under the current heading path. A heading with no text of its own
    and no subheading keeps its words as text of its parent, so nothing is dropped."""

    def __init__(self, max_chars: int) -> None:
        self.sections: list[Section] = []
        self._path: list[tuple[int, str]] = []
        self._blocks: list[str] = []
        self._bodiless = False
        self._chars = 0
        self._max_chars = max_chars

    @property
    def chars(self) -> int:
        """Characters of text collected so far."""
        return self._chars

    def _count(self, chars: int) -> None:
        self._chars += chars
        if self._chars > self._max_chars:
            raise too_many_chars(self._max_chars)

    def heading(self, level: int, raw: str) -> None:
        text = clean_line(raw)
        if not text:
            return
        self._flush()
        if self._bodiless and self._path and level <= self._path[-1][0]:
            self._keep_orphan()
        while self._path and self._path[-1][0] >= level:
            self._path.pop()
        self._path.append((level, text))
        self._bodiless = True
        self._count(len(text))

    def block(self, raw: str) -> None:
        text = clean(raw)
        if text:
            self._count(len(text))
            self._blocks.append(text)

    def section(self, headings: tuple[str, ...], raw: str) -> None:
        """A whole section at once (a PDF page)."""
        text = clean(raw)
        if text:
            self._count(len(text))
            self.sections.append(Section(headings, text))

    def finish(self) -> list[Section]:
        self._flush()
        if self._bodiless and self._path:
            self._keep_orphan()
        return self.sections

    def _flush(self) -> None:
        if self._blocks:
            headings = tuple(text for _, text in self._path)
            self.sections.append(Section(headings, "\n\n".join(self._blocks)))
            self._blocks = []
            self._bodiless = False

    def _keep_orphan(self) -> None:
        *parent, (_, orphan) = self._path
        self.sections.append(Section(tuple(text for _, text in parent), orphan))
        self._path = parent
        self._bodiless = False
