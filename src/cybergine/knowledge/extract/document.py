"""What extraction returns, and the limits it works within."""

from __future__ import annotations

import enum
from dataclasses import dataclass, fields
from typing import Final

_MIB = 1024 * 1024


class DocumentType(enum.StrEnum):
    PDF = "pdf"
    DOCX = "docx"
    HTML = "html"
    MARKDOWN = "markdown"
    TEXT = "text"


@dataclass(frozen=True)
class Section:
    """A run of text under one heading path, in document order. ``headings`` is empty for
    text before any heading; ``text`` holds paragraphs separated by one blank line."""

    headings: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class ExtractedDocument:
    type: DocumentType
    title: str | None
    sections: list[Section]
    page_count: int | None  # PDFs only

    @property
    def text(self) -> str:
        """The whole text: each heading on its own line where it starts, sections separated
        by blank lines."""
        parts: list[str] = []
        previous: tuple[str, ...] = ()
        for section in self.sections:
            shared = 0
            limit = min(len(previous), len(section.headings))
            while shared < limit and previous[shared] == section.headings[shared]:
                shared += 1
            if section.headings != previous:
                parts.extend(section.headings[shared:])
            parts.append(section.text)
            previous = section.headings
        return "\n\n".join(parts)


@dataclass(frozen=True)
class Limits:
    """What one document may cost. Each parser counts its work against these AS IT GOES
    (a file's size says little about the work it hides: one shared PDF content stream,
    a zip directory that understates, a million empty Markdown list items), so a hostile
    file is refused after a bounded amount of work, not after the parser has done it all.

    The defaults let a normal 500-page manual or a 20 MB real document through; the work
    they allow a file that yields no text is a few seconds of CPU and well under 256 MiB.
    A PDF that does yield text earns more (up to the character limit), so extraction
    also runs in a process with its own CPU and memory limits.
    """

    max_bytes: int = 20 * _MIB  # the uploaded file
    max_pages: int = 500  # PDF pages
    max_chars: int = 2_000_000  # extracted text
    # Markdown and plain text, before parsing: their markup is light, so four times the
    # text limit only refuses files whose text would be refused anyway.
    max_markup_chars: int = 8_000_000
    # Markdown's parser keeps five numbers per line before it reads the first one (some
    # 180 bytes a line: 4 MiB of "-" lines made 360 MB of them).
    max_markdown_lines: int = 400_000
    # Positions Markdown's parser stops at to try its rules (each block, each special
    # character of the text; a "[" counts twenty, for the link it looks ahead for):
    # about 2 µs each.
    max_markdown_steps: int = 1_000_000
    # HTML elements and attributes, Markdown tokens, counted while parsing (each costs
    # some 7 µs and, for Markdown, 350 bytes: a dense 800 KB Markdown manual has 265,000
    # tokens); XML elements of a Word document, counted by a streaming pass before
    # python-docx builds its tree; and how deep any of them (or PDF bookmarks) may nest.
    max_nodes: int = 300_000
    max_xml_elements: int = 1_000_000
    # Paragraphs and table cells of a Word document, counted in the same pass: python-docx
    # walks each in 17 to 70 µs (a 500-page manual has 15,000 to 30,000).
    max_word_paragraphs: int = 60_000
    max_depth: int = 256
    # A Word document's XML parts, counted while they inflate (the zip directory's sizes
    # are never trusted), and its number of zip entries.
    max_unpacked_bytes: int = 64 * _MIB
    max_zip_entries: int = 10_000
    # PDF: one decoded stream; the content-stream bytes parsed for the whole document
    # (a stream counts each time a page or form uses it, a page's fonts each time a page
    # reads them) as an allowance that every
    # character of text found raises by ``pdf_content_bytes_per_char``, since real pages
    # pay for their drawing instructions with text; and content-stream operators.
    max_pdf_stream_bytes: int = 4 * _MIB
    max_pdf_content_bytes: int = 2 * _MIB
    pdf_content_bytes_per_char: int = 16
    max_pdf_operators: int = 4_000_000

    def __post_init__(self) -> None:
        if min(getattr(self, field.name) for field in fields(self)) <= 0:
            raise ValueError("limits must be positive")


DEFAULT_LIMITS: Final = Limits()  # frozen: one shared default is safe
