"""Plain text: one block, cleaned."""

from __future__ import annotations

from cybergine.knowledge.extract.document import DocumentType, ExtractedDocument, Limits
from cybergine.knowledge.extract.errors import check_markup_size
from cybergine.knowledge.extract.sections import Sections


def extract_text(text: str, limits: Limits) -> ExtractedDocument:
    check_markup_size(text, limits.max_markup_chars)
    sections = Sections(limits.max_chars)
    sections.block(text)
    return ExtractedDocument(DocumentType.TEXT, None, sections.finish(), None)
