"""Why a document is refused: domain errors with messages fit to show the uploader, and
the running counters that raise them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

from cybergine.errors import CybergineError, InvalidInput


class _DocumentRejected(InvalidInput):
    default_detail: ClassVar[str] = ""

    def __init__(self, detail: str | None = None, **extra: Any) -> None:
        super().__init__(detail or self.default_detail, **extra)


class UnsupportedDocument(_DocumentRejected):
    type_slug = "unsupported-document"
    title = "Unsupported document"
    default_detail = (
        "This file type is not supported. Upload PDF, Word (.docx), HTML, Markdown or plain text."
    )


class EncryptedDocument(_DocumentRejected):
    type_slug = "encrypted-document"
    title = "Password-protected document"
    default_detail = (
        "This PDF is password-protected, so its text cannot be read. Save a copy without "
        "the password and upload that instead."
    )


class EmptyDocument(_DocumentRejected):
    type_slug = "empty-document"
    title = "No text in document"
    default_detail = (
        "No text could be found in this file. Check that it is the file you meant to "
        "upload and that it is not empty."
    )


class CorruptDocument(_DocumentRejected):
    type_slug = "corrupt-document"
    title = "Damaged document"
    default_detail = (
        "This file is damaged or not what its contents claim to be, so it could not be "
        "read. Open it on your computer, save it again and upload the new copy."
    )


class DocumentTooLarge(CybergineError):
    """``extra`` says which limit and its ``maximum``. ``limit`` is bytes, pages or chars,
    or one of the work limits: markup_chars, markdown_lines, nodes, xml_elements, depth,
    unpacked_bytes, zip_entries, pdf_stream_bytes, pdf_content_bytes, pdf_operators or
    pdf_structure (pypdf's own limits, maximum 0)."""

    status = 413
    type_slug = "document-too-large"
    title = "Document too large"

    def __init__(self, detail: str, *, limit: str, maximum: int) -> None:
        super().__init__(detail, limit=limit, maximum=maximum)
        self.limit = limit
        self.maximum = maximum


ENCRYPTED_WORD = (
    "This Word document is password-protected, so its text cannot be read. Save a copy "
    "without the password and upload that instead."
)
SCANNED_PDF = (
    "No text could be found in this PDF: it looks like a scan (pictures of pages without a "
    "text layer). Run it through text recognition (OCR) and upload the result."
)


def megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):,.1f} MB" if size >= 100 * 1024 else f"{size:,} bytes"


def too_many_bytes(size: int, maximum: int) -> DocumentTooLarge:
    return DocumentTooLarge(
        f"This file is {megabytes(size)}; the limit is {megabytes(maximum)}.",
        limit="bytes",
        maximum=maximum,
    )


def too_many_chars(maximum: int) -> DocumentTooLarge:
    return DocumentTooLarge(
        f"This document holds more than {maximum:,} characters of text, the limit. "
        "Split it into smaller files and upload them separately.",
        limit="chars",
        maximum=maximum,
    )


def too_much_work(what: str, maximum: int, *, limit: str) -> DocumentTooLarge:
    return DocumentTooLarge(
        f"This document holds more {what} than can be read (the limit is {maximum:,}). "
        "Save it again in a simpler form, or split it into smaller files.",
        limit=limit,
        maximum=maximum,
    )


class Budget:
    """A running count of one kind of work. ``spend`` raises the refusal once the count
    passes the maximum; ``allow`` raises the maximum (work earned by useful output)."""

    __slots__ = ("maximum", "refusal", "spent")

    def __init__(self, maximum: int, refusal: Callable[[int], CybergineError]) -> None:
        self.maximum = maximum
        self.refusal = refusal
        self.spent = 0

    def spend(self, amount: int = 1) -> None:
        self.spent += amount
        if self.spent > self.maximum:
            raise self.refusal(self.maximum)

    def allow(self, amount: int) -> None:
        self.maximum += amount


def check_markup_size(text: str, maximum: int) -> None:
    """Refuse, before parsing, a text whose markup alone is more than parsing may cost."""
    if len(text) > maximum:
        raise DocumentTooLarge(
            f"This file holds {len(text):,} characters; the limit is {maximum:,}. Split it "
            "into smaller files and upload them separately.",
            limit="markup_chars",
            maximum=maximum,
        )
