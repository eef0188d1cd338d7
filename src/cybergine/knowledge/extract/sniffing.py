"""Which format a file is, from its content (never from its name), and its text decoded
for the text formats."""

from __future__ import annotations

import re
from typing import Final

from cybergine.knowledge.extract.document import DEFAULT_LIMITS, DocumentType, Limits
from cybergine.knowledge.extract.errors import (
    ENCRYPTED_WORD,
    Budget,
    CorruptDocument,
    DocumentTooLarge,
    EmptyDocument,
    EncryptedDocument,
    UnsupportedDocument,
    too_much_work,
)
from cybergine.knowledge.extract.zips import open_archive, read_member

_MARKDOWN_TYPES: Final = frozenset({"text/markdown", "text/x-markdown", "markdown", "md"})
_MARKDOWN_SUFFIXES: Final = (".md", ".markdown", ".mdown", ".mkd", ".mkdn")
_OLE_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_CONTENT_TYPES_MAX: Final = 1024 * 1024
_DOCX_MAIN_TYPE: Final = (
    b"application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"
)
# Controls that never occur in real text (tab, newline, carriage return, form feed and
# vertical tab do).
_BINARY_CHARS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f-\x9f]")
_BINARY_BYTES = re.compile(rb"[\x00-\x08\x0e-\x1f\x7f]")
_HTML_DOCUMENT = re.compile(
    r"\A\s*(?:<\?xml[^>]*>\s*)?(?:<!--.*?-->\s*)*(?:<!doctype\s+html|<html[\s>])",
    re.IGNORECASE | re.DOTALL,
)
_HTML_TAG_START = re.compile(
    r"<(?:a|article|b|blockquote|body|br|dd|div|dl|dt|em|figure|footer|form|h[1-6]|head|"
    r"header|hr|i|img|li|link|main|meta|nav|ol|p|pre|script|section|span|strong|style|"
    r"table|tbody|td|th|thead|title|tr|ul)[\s/>]",
    re.IGNORECASE,
)
_ATX_HEADING = re.compile(r"^ {0,3}#{1,6}[ \t]+\S", re.MULTILINE)
_SETEXT_HEADING = re.compile(r"^ {0,3}\S[^\n]*\n {0,3}(?:={2,}|-{2,})[ \t]*$", re.MULTILINE)


def sniff(
    data: bytes, *, filename: str | None = None, declared_type: str | None = None
) -> DocumentType:
    """The document's type, from its content. ``filename`` and ``declared_type`` only
    choose Markdown over plain text; they never make other content pass. Raises
    `UnsupportedDocument`, `EmptyDocument`, `CorruptDocument` or `EncryptedDocument`."""
    return sniff_and_decode(data, filename=filename, declared_type=declared_type)[0]


def sniff_and_decode(
    data: bytes,
    *,
    filename: str | None,
    declared_type: str | None,
    limits: Limits = DEFAULT_LIMITS,
) -> tuple[DocumentType, str | None]:
    """The type, and for the text types the decoded text (decoded once)."""
    if not data:
        raise EmptyDocument()
    if _is_pdf(data):
        return DocumentType.PDF, None
    if data.startswith(b"PK\x03\x04"):
        if _is_docx(data, limits):
            return DocumentType.DOCX, None
        raise UnsupportedDocument()
    if data.startswith(_OLE_MAGIC) and "EncryptedPackage".encode("utf-16-le") in data:
        # Office stores a password-protected .docx inside an OLE container.
        raise EncryptedDocument(ENCRYPTED_WORD)
    text = _decode(data)
    if text is None:
        raise UnsupportedDocument()
    if _looks_like_html(text):
        return DocumentType.HTML, text
    if _looks_like_markdown(text) or _says_markdown(filename, declared_type):
        return DocumentType.MARKDOWN, text
    return DocumentType.TEXT, text


def _is_pdf(data: bytes) -> bool:
    if data.startswith(b"%PDF-"):
        return True
    # Readers accept a PDF header after up to 1 KB of junk; require the trailer too, so a
    # text that merely mentions "%PDF-" stays text.
    return b"%PDF-" in data[:1024] and b"%%EOF" in data[-2048:]


def _is_docx(data: bytes, limits: Limits) -> bool:
    try:
        archive = open_archive(data, max_entries=limits.max_zip_entries)
    except DocumentTooLarge:
        raise
    except Exception as exc:  # a ZIP header over a broken archive: any zipfile error
        raise CorruptDocument() from exc
    with archive:
        names = set(archive.namelist())
        if "word/document.xml" in names:
            return True
        # A generator may name the main part differently; its content type still says.
        if "[Content_Types].xml" not in names:
            return False
        try:
            content_types = read_member(
                archive,
                archive.getinfo("[Content_Types].xml"),
                Budget(
                    _CONTENT_TYPES_MAX,
                    lambda limit: too_much_work("content types", limit, limit="bytes"),
                ),
            )
        except DocumentTooLarge:
            return False  # no Word document has a list of content types this long
        except Exception as exc:
            raise CorruptDocument() from exc
        return _DOCX_MAIN_TYPE in content_types


def _decode(data: bytes) -> str | None:
    """The text, or None for binary. UTF-8 (BOM or not), UTF-16/32 with a BOM, and as a
    last resort Windows-1252 for legacy files that contain no binary control bytes."""
    text: str | None = None
    if data.startswith((b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")):
        text = _try_decode(data, "utf-32")
    if text is None and data.startswith((b"\xff\xfe", b"\xfe\xff")):
        text = _try_decode(data, "utf-16")
    if text is None:
        text = _try_decode(data, "utf-8-sig")
    if text is None:
        high = sum(1 for byte in data if byte >= 0x80)
        if _BINARY_BYTES.search(data) is not None or high * 10 > len(data) * 3:
            return None
        text = _try_decode(data, "cp1252")
    if text is None:
        return None
    # Valid UTF-8 can still be binary (a file of zeros is); real text has next to no
    # control characters: a stray one is cleaned away, more than 1% means binary.
    if len(_BINARY_CHARS.findall(text)) > 1 + len(text) // 100:
        return None
    return text


def _try_decode(data: bytes, encoding: str) -> str | None:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        return None


def _looks_like_html(text: str) -> bool:
    head = text[:4096]
    if _HTML_DOCUMENT.match(head):
        return True
    stripped = head.lstrip()
    if not _HTML_TAG_START.match(stripped):
        return False
    # A fragment (no <html>): HTML only if markup dominates, so a Markdown file that opens
    # with a few badges or a <p align=center> stays Markdown.
    lines = [line for line in text[:65536].splitlines() if line.strip()]
    tagged = sum(1 for line in lines if line.lstrip().startswith("<"))
    return tagged * 2 >= len(lines)


def _looks_like_markdown(text: str) -> bool:
    return bool(_ATX_HEADING.search(text) or _SETEXT_HEADING.search(text))


def _says_markdown(filename: str | None, declared_type: str | None) -> bool:
    if declared_type and declared_type.split(";")[0].strip().lower() in _MARKDOWN_TYPES:
        return True
    return bool(filename) and str(filename).lower().endswith(_MARKDOWN_SUFFIXES)
