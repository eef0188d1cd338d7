"""Text out of an uploaded document: PDF, Word (.docx), HTML, Markdown or plain text.

Pure: no database, no settings, no I/O beyond the bytes given. The type is decided from
the content, never from the file name, so a renamed file cannot smuggle one format in as
another. Every failure is a `CybergineError` with a message fit to show the uploader;
no parser exception escapes, and no message echoes the file's content.

Each format's parser counts its work as it goes against `Limits` (content-stream bytes
and operators for PDF, inflated bytes and XML elements for Word, tokens, elements and
nesting for Markdown and HTML), so a small hostile file is refused after bounded work.

The PDF and Word parsers (pypdf, python-docx and its lxml) are imported by ``extract`` when
it first meets their format, not with this package: the web process names the package's
types, and uploaded files are read in ``knowledge.extraction_process``'s children, forked
from a server that loads both once.
"""

from __future__ import annotations

from cybergine.errors import CybergineError
from cybergine.knowledge.extract.document import (
    DEFAULT_LIMITS,
    DocumentType,
    ExtractedDocument,
    Limits,
    Section,
)
from cybergine.knowledge.extract.errors import (
    CorruptDocument,
    DocumentTooLarge,
    EmptyDocument,
    EncryptedDocument,
    UnsupportedDocument,
    too_many_bytes,
)
from cybergine.knowledge.extract.html import extract_html
from cybergine.knowledge.extract.markdown import extract_markdown
from cybergine.knowledge.extract.sniffing import sniff, sniff_and_decode
from cybergine.knowledge.extract.text import extract_text

__all__ = [
    "CorruptDocument",
    "DocumentTooLarge",
    "DocumentType",
    "EmptyDocument",
    "EncryptedDocument",
    "ExtractedDocument",
    "Limits",
    "Section",
    "UnsupportedDocument",
    "extract",
    "sniff",
]


def extract(
    data: bytes,
    *,
    filename: str | None = None,
    declared_type: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> ExtractedDocument:
    """The document's text as sections under their heading paths.

    Raises `DocumentTooLarge` (413) or an `InvalidInput` (422): `UnsupportedDocument`,
    `EncryptedDocument`, `EmptyDocument`, `CorruptDocument`."""
    if len(data) > limits.max_bytes:
        raise too_many_bytes(len(data), limits.max_bytes)
    kind, text = sniff_and_decode(
        data, filename=filename, declared_type=declared_type, limits=limits
    )
    try:
        if kind is DocumentType.PDF:
            from cybergine.knowledge.extract.pdf import extract_pdf

            document = extract_pdf(data, limits)
        elif kind is DocumentType.DOCX:
            from cybergine.knowledge.extract.docx import extract_docx

            document = extract_docx(data, limits)
        else:
            assert text is not None
            if kind is DocumentType.HTML:
                document = extract_html(text, limits)
            elif kind is DocumentType.MARKDOWN:
                document = extract_markdown(text, limits)
            else:
                document = extract_text(text, limits)
    except (CybergineError, MemoryError):
        raise
    except Exception as exc:  # parsers fail in many ways on hostile input; all mean "damaged"
        raise CorruptDocument() from exc
    if not document.sections:
        raise EmptyDocument()
    return document
