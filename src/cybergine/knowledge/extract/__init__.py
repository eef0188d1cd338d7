"""Text out of an uploaded document: PDF, Word (.docx), HTML, Markdown or plain text.

Pure: no database, no settings, no I/O beyond the bytes given. The type is decided from
the content, never from the file name, so a renamed file cannot smuggle one format in as
another. Every failure is a `CybergineError` with a message fit to show the uploader;
no parser exception escapes, and no message echoes the file's content.
"""

from __future__ import annotations

import enum
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Final

import docx
import pypdf
from bs4 import BeautifulSoup
from bs4.element import (
    NavigableString,
    PreformattedString,
    Script,
    Stylesheet,
    Tag,
    TemplateString,
)
from docx.table import Table
from docx.text.paragraph import Paragraph
from markdown_it import MarkdownIt
from markdown_it.token import Token
from pypdf.errors import DependencyError

from cybergine.errors import CybergineError, InvalidInput

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
    max_bytes: int = 20 * 1024 * 1024
    max_pages: int = 500
    max_chars: int = 2_000_000  # extracted text; also bounds what a zip bomb may unpack

    def __post_init__(self) -> None:
        if min(self.max_bytes, self.max_pages, self.max_chars) <= 0:
            raise ValueError("limits must be positive")


# --- Errors -------------------------------------------------------------------------------


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
    """``extra`` says which limit (``limit``: bytes, pages or chars) and its ``maximum``."""

    status = 413
    type_slug = "document-too-large"
    title = "Document too large"

    def __init__(self, detail: str, *, limit: str, maximum: int) -> None:
        super().__init__(detail, limit=limit, maximum=maximum)
        self.limit = limit
        self.maximum = maximum


_ENCRYPTED_WORD = (
    "This Word document is password-protected, so its text cannot be read. Save a copy "
    "without the password and upload that instead."
)
_SCANNED_PDF = (
    "No text could be found in this PDF: it looks like a scan (pictures of pages without a "
    "text layer). Run it through text recognition (OCR) and upload the result."
)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):,.1f} MB" if size >= 100 * 1024 else f"{size:,} bytes"


def _too_many_bytes(size: int, maximum: int) -> DocumentTooLarge:
    return DocumentTooLarge(
        f"This file is {_megabytes(size)}; the limit is {_megabytes(maximum)}.",
        limit="bytes",
        maximum=maximum,
    )


def _too_many_chars(maximum: int) -> DocumentTooLarge:
    return DocumentTooLarge(
        f"This document holds more than {maximum:,} characters of text, the limit. "
        "Split it into smaller files and upload them separately.",
        limit="chars",
        maximum=maximum,
    )


# --- Text normalisation -------------------------------------------------------------------


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


def _clean(text: str) -> str:
    """NFC, no control characters but newline and tab, single spaces, trimmed lines, at
    most one blank line in a row."""
    text = text.replace("\r\n", "\n").translate(_TRANSLATION)
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    text = _SPACES.sub(" ", text)
    text = _LINE_EDGES.sub("\n", text)
    text = _BLANK_LINES.sub("\n\n", text)
    return text.strip()


def _clean_line(text: str) -> str:
    return _ANY_WHITESPACE.sub(" ", _clean(text)).strip()


def _title(text: str | None) -> str | None:
    cleaned = _clean_line(text or "")[:500]
    return cleaned or None


class _Sections:
    """Collects blocks under the current heading path. A heading with no text of its own
    and no subheading keeps its words as text of its parent, so nothing is dropped."""

    def __init__(self, max_chars: int) -> None:
        self.sections: list[Section] = []
        self._path: list[tuple[int, str]] = []
        self._blocks: list[str] = []
        self._bodiless = False
        self._chars = 0
        self._max_chars = max_chars

    def _count(self, chars: int) -> None:
        self._chars += chars
        if self._chars > self._max_chars:
            raise _too_many_chars(self._max_chars)

    def heading(self, level: int, raw: str) -> None:
        text = _clean_line(raw)
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
        text = _clean(raw)
        if text:
            self._count(len(text))
            self._blocks.append(text)

    def section(self, headings: tuple[str, ...], raw: str) -> None:
        """A whole section at once (a PDF page)."""
        text = _clean(raw)
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


# --- Sniffing -----------------------------------------------------------------------------

_MARKDOWN_TYPES: Final = frozenset({"text/markdown", "text/x-markdown", "markdown", "md"})
_MARKDOWN_SUFFIXES: Final = (".md", ".markdown", ".mdown", ".mkd", ".mkdn")
_OLE_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
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
    return _sniff(data, filename=filename, declared_type=declared_type)[0]


def _sniff(
    data: bytes, *, filename: str | None, declared_type: str | None
) -> tuple[DocumentType, str | None]:
    """The type, and for the text types the decoded text (decoded once)."""
    if not data:
        raise EmptyDocument()
    if _is_pdf(data):
        return DocumentType.PDF, None
    if data.startswith(b"PK\x03\x04"):
        if _is_docx(data):
            return DocumentType.DOCX, None
        raise UnsupportedDocument()
    if data.startswith(_OLE_MAGIC) and "EncryptedPackage".encode("utf-16-le") in data:
        # Office stores a password-protected .docx inside an OLE container.
        raise EncryptedDocument(_ENCRYPTED_WORD)
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


def _is_docx(data: bytes) -> bool:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
            if "word/document.xml" in names:
                return True
            # A generator may name the main part differently; its content type still says.
            if "[Content_Types].xml" not in names:
                return False
            info = archive.getinfo("[Content_Types].xml")
            if info.file_size > 1024 * 1024:
                return False
            return _DOCX_MAIN_TYPE in archive.read(info)
    except Exception as exc:  # a ZIP header over a broken archive: any zipfile error
        raise CorruptDocument() from exc


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


# --- Extraction ---------------------------------------------------------------------------


def extract(
    data: bytes,
    *,
    filename: str | None = None,
    declared_type: str | None = None,
    limits: Limits = Limits(),  # frozen: one shared default is safe
) -> ExtractedDocument:
    """The document's text as sections under their heading paths.

    Raises `DocumentTooLarge` (413) or an `InvalidInput` (422): `UnsupportedDocument`,
    `EncryptedDocument`, `EmptyDocument`, `CorruptDocument`."""
    if len(data) > limits.max_bytes:
        raise _too_many_bytes(len(data), limits.max_bytes)
    kind, text = _sniff(data, filename=filename, declared_type=declared_type)
    try:
        if kind is DocumentType.PDF:
            document = _extract_pdf(data, limits)
        elif kind is DocumentType.DOCX:
            document = _extract_docx(data, limits)
        else:
            assert text is not None
            if kind is DocumentType.HTML:
                document = _extract_html(text, limits)
            elif kind is DocumentType.MARKDOWN:
                document = _extract_markdown(text, limits)
            else:
                document = _extract_text(text, limits)
    except (CybergineError, MemoryError):
        raise
    except Exception as exc:  # parsers fail in many ways on hostile input; all mean "damaged"
        raise CorruptDocument() from exc
    if not document.sections:
        raise EmptyDocument()
    return document


# PDF


def _extract_pdf(data: bytes, limits: Limits) -> ExtractedDocument:
    try:
        reader = pypdf.PdfReader(io.BytesIO(data))
    except (NotImplementedError, DependencyError) as exc:
        # An encryption scheme pypdf cannot handle; without "/Encrypt" it is damage.
        if b"/Encrypt" in data:
            raise EncryptedDocument() from exc
        raise
    if reader.is_encrypted:
        # Many "protected" PDFs only restrict printing or copying: they open with the
        # empty user password.
        try:
            unlocked = reader.decrypt("")
        except (NotImplementedError, DependencyError) as exc:
            raise EncryptedDocument() from exc
        if unlocked == pypdf.PasswordType.NOT_DECRYPTED:
            raise EncryptedDocument()
    pages = reader.pages
    page_count = len(pages)
    if page_count > limits.max_pages:
        raise DocumentTooLarge(
            f"This PDF has {page_count:,} pages; the limit is {limits.max_pages:,} pages. "
            "Split it into smaller files and upload them separately.",
            limit="pages",
            maximum=limits.max_pages,
        )
    outline = _pdf_outline(reader)
    sections = _Sections(limits.max_chars)
    failures = 0
    next_entry = 0
    headings: tuple[str, ...] = ()
    for number, page in enumerate(pages):
        while next_entry < len(outline) and outline[next_entry][0] <= number:
            headings = outline[next_entry][1]
            next_entry += 1
        try:
            raw = page.extract_text()
        except (CybergineError, MemoryError):
            raise
        except Exception:  # one unreadable page should not cost the rest of the document
            failures += 1
            continue
        sections.section(headings, raw)
    if failures * 2 > page_count:
        raise CorruptDocument()
    found = sections.finish()
    if not found and page_count:
        raise EmptyDocument(_SCANNED_PDF)
    return ExtractedDocument(DocumentType.PDF, _pdf_title(reader), found, page_count)


def _pdf_title(reader: pypdf.PdfReader) -> str | None:
    try:
        metadata = reader.metadata
        return _title(metadata.title) if metadata is not None else None
    except Exception:  # metadata is optional; a broken info dictionary is no reason to fail
        return None


_MAX_OUTLINE_ENTRIES: Final = 10_000
_MAX_OUTLINE_DEPTH: Final = 6


def _pdf_outline(reader: pypdf.PdfReader) -> list[tuple[int, tuple[str, ...]]]:
    """Bookmarks as (page index, heading path), by page. A page takes the path of the last
    bookmark pointing at it or before it: approximate (a chapter may start mid-page), but
    the only heading structure a PDF reliably has."""
    entries: list[tuple[int, tuple[str, ...]]] = []

    def walk(items: Sequence[Any], parents: tuple[str, ...]) -> None:
        last: tuple[str, ...] = parents
        for item in items:
            if len(entries) >= _MAX_OUTLINE_ENTRIES:
                return
            if isinstance(item, list):
                if len(last) < _MAX_OUTLINE_DEPTH:
                    walk(item, last)
                continue
            title = _clean_line(str(getattr(item, "title", "") or ""))
            page = reader.get_destination_page_number(item)
            last = (*parents, title) if title else parents
            if title and page is not None and page >= 0:
                entries.append((page, last))

    try:
        walk(reader.outline, ())
    except Exception:  # bookmarks are a bonus; a broken outline leaves pages without headings
        return []
    entries.sort(key=lambda entry: entry[0])  # stable: same-page entries keep their order
    return entries


# DOCX

_DOCX_MAX_PARTS: Final = 10_000
_DOCX_MAX_UNPACKED: Final = 256 * 1024 * 1024
# Word's XML spends many bytes of markup per character of text; 16 leaves room for
# heavily formatted documents while still bounding what lxml is asked to parse.
_DOCX_XML_BYTES_PER_CHAR: Final = 16
_DOCX_MIN_PART_CAP: Final = 1024 * 1024
_DOCX_UNSUPPORTED_MAIN: Final = (b"macroEnabled.main+xml", b"template.main+xml")
_HEADING_STYLE = re.compile(r"heading\s*([1-9])", re.IGNORECASE)
_MAX_TABLE_NESTING: Final = 3


def _check_docx_archive(data: bytes, limits: Limits) -> None:
    """Refuse a zip bomb before python-docx reads every part into memory. The sizes come
    from the archive's directory; zipfile never inflates a member past its stated size."""
    part_cap = max(limits.max_chars * _DOCX_XML_BYTES_PER_CHAR, _DOCX_MIN_PART_CAP)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        infos = archive.infolist()
        if len(infos) > _DOCX_MAX_PARTS:
            raise CorruptDocument()
        total = 0
        for info in infos:
            if info.file_size > part_cap:
                raise DocumentTooLarge(
                    f"This Word document unpacks to more than {_megabytes(part_cap)}: more "
                    f"than the limit of {limits.max_chars:,} characters of text could need.",
                    limit="chars",
                    maximum=limits.max_chars,
                )
            total += info.file_size
        if total > _DOCX_MAX_UNPACKED:
            raise DocumentTooLarge(
                f"This Word document unpacks to more than {_megabytes(_DOCX_MAX_UNPACKED)}, "
                "the limit.",
                limit="bytes",
                maximum=_DOCX_MAX_UNPACKED,
            )
        if "[Content_Types].xml" in archive.namelist():
            content_types = archive.read("[Content_Types].xml")
            if any(kind in content_types for kind in _DOCX_UNSUPPORTED_MAIN):
                raise UnsupportedDocument()  # .docm and .dotx: python-docx refuses them


def _extract_docx(data: bytes, limits: Limits) -> ExtractedDocument:
    _check_docx_archive(data, limits)
    document = docx.Document(io.BytesIO(data))
    sections = _Sections(limits.max_chars)
    levels: dict[str | None, int | None] = {}
    first_heading: str | None = None
    for block in document.iter_inner_content():
        if isinstance(block, Paragraph):
            style_id = block._p.style
            if style_id not in levels:
                levels[style_id] = _docx_heading_level(block)
            level = levels[style_id]
            if level is None:
                sections.block(block.text)
            else:
                sections.heading(level, block.text)
                if first_heading is None and level <= 1:
                    first_heading = _title(block.text)
        else:
            sections.block("\n".join(_docx_table_lines(block, 0)))
    title = _title(document.core_properties.title) or first_heading
    return ExtractedDocument(DocumentType.DOCX, title, sections.finish(), None)


def _docx_heading_level(paragraph: Paragraph) -> int | None:
    """0 for Title, 1 to 9 for Heading 1 to 9, following a custom style's base styles."""
    style = paragraph.style
    for _ in range(10):  # base-style chains are short; a loop in one must not hang us
        if style is None:
            return None
        name = (style.name or "").strip()
        if name.lower() == "title":
            return 0
        match = _HEADING_STYLE.fullmatch(name)
        if match:
            return int(match.group(1))
        style = style.base_style
    return None


def _docx_table_lines(table: Table, depth: int) -> list[str]:
    """One line per row, cells joined by " | "; a merged cell counts once per row."""
    lines: list[str] = []
    for row in table.rows:
        seen: list[object] = []
        cells: list[str] = []
        for cell in row.cells:
            if any(cell._tc is other for other in seen):
                continue
            seen.append(cell._tc)
            parts: list[str] = []
            for inner in cell.iter_inner_content():
                if isinstance(inner, Paragraph):
                    parts.append(inner.text)
                elif depth < _MAX_TABLE_NESTING:
                    parts.extend(_docx_table_lines(inner, depth + 1))
            text = _clean_line(" ".join(parts))
            if text:
                cells.append(text)
        if cells:
            lines.append(" | ".join(cells))
    return lines


# HTML

_HTML_DROP: Final = frozenset(
    {
        "aside", "audio", "button", "canvas", "datalist", "embed", "head", "iframe",
        "input", "map", "nav", "noscript", "object", "option", "script", "select",
        "style", "svg", "template", "textarea", "title", "video",
    }
)  # fmt: skip
# Page chrome, unless it belongs to the content (an article's own header holds its title).
_HTML_CHROME: Final = frozenset({"header", "footer"})
_HTML_CONTENT: Final = frozenset({"article", "main"})
_HTML_HEADINGS: Final = {f"h{level}": level for level in range(1, 7)}
_HTML_BLOCKS: Final = frozenset(
    {
        "address", "article", "blockquote", "body", "caption", "center", "details",
        "dialog", "div", "dl", "fieldset", "figcaption", "figure", "footer", "form",
        "header", "html", "legend", "main", "ol", "p", "section", "summary", "table",
        "tbody", "tfoot", "thead", "ul",
    }
)  # fmt: skip
_HTML_LINES: Final = frozenset({"dd", "dt", "li"})


class _HtmlText:
    def __init__(self, sections: _Sections) -> None:
        self.sections = sections
        self._lines: list[str] = []
        self._inline: list[str] = []

    def text(self, text: str) -> None:
        self._inline.append(text)

    def end_line(self) -> None:
        if self._inline:
            line = " ".join("".join(self._inline).split())
            self._inline = []
            if line:
                self._lines.append(line)

    def end_paragraph(self) -> None:
        self.end_line()
        if self._lines:
            self.sections.block("\n".join(self._lines))
            self._lines = []

    def line(self, text: str) -> None:
        self.end_line()
        if text:
            self._lines.append(text)


def _extract_html(text: str, limits: Limits) -> ExtractedDocument:
    soup = BeautifulSoup(text, "html.parser")
    title_tag = soup.find("title")
    title = _title(title_tag.get_text(" ")) if isinstance(title_tag, Tag) else None
    main = soup.find("main") or soup.find(None, {"role": "main"})
    roots: list[Tag] = [main] if isinstance(main, Tag) else []
    body = soup.body
    roots.append(body if body is not None else soup)
    found: list[Section] = []
    for root in roots:  # the main content when marked, else the whole body
        sections = _Sections(limits.max_chars)
        _walk_html(root, _HtmlText(sections))
        found = sections.finish()
        if found:
            break
    if title is None:
        first_h1 = soup.find("h1")
        title = _title(first_h1.get_text(" ")) if isinstance(first_h1, Tag) else None
    return ExtractedDocument(DocumentType.HTML, title, found, None)


def _walk_html(root: Tag, out: _HtmlText) -> None:
    # An explicit stack: hostile pages nest deeper than Python's recursion limit.
    stack: list[tuple[Any, bool, bool]] = [(root, False, False)]
    while stack:
        node, closing, in_content = stack.pop()
        if closing:
            if node.name in _HTML_LINES:
                out.end_line()
            else:
                out.end_paragraph()
            continue
        if isinstance(node, NavigableString):
            if not isinstance(node, (PreformattedString, Script, Stylesheet, TemplateString)):
                out.text(str(node))
            continue
        if not isinstance(node, Tag):
            continue
        name = node.name
        if (
            name in _HTML_DROP
            or (name in _HTML_CHROME and not in_content)
            or node.has_attr("hidden")
            or str(node.get("aria-hidden", "")).lower() == "true"
        ):
            continue
        if name in _HTML_HEADINGS:
            out.end_paragraph()
            out.sections.heading(_HTML_HEADINGS[name], node.get_text(" "))
            continue
        if name == "br":
            out.end_line()
            continue
        if name == "hr":
            out.end_paragraph()
            continue
        if name == "pre":
            out.end_paragraph()
            out.sections.block(node.get_text())
            continue
        if name == "tr":
            cells = [
                _clean_line(cell.get_text(" "))
                for cell in node.find_all(["td", "th"], recursive=False)
            ]
            out.line(" | ".join(cell for cell in cells if cell))
            continue
        if name in _HTML_BLOCKS:
            out.end_paragraph()
        elif name in _HTML_LINES:
            out.end_line()
        else:  # inline: no break around it
            stack.extend((child, False, in_content) for child in reversed(node.contents))
            continue
        stack.append((node, True, in_content))
        inner = in_content or name in _HTML_CONTENT
        stack.extend((child, False, inner) for child in reversed(node.contents))
    out.end_paragraph()


# Markdown

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FRONT_MATTER_KEY = re.compile(r"[A-Za-z0-9_-]+[ \t]*:")
_FRONT_MATTER_TITLE = re.compile(r"^title[ \t]*:[ \t]*(.+?)[ \t]*$", re.MULTILINE)


def _markdown_parser() -> MarkdownIt:
    return MarkdownIt("commonmark").enable(["table", "strikethrough"])


def _extract_markdown(text: str, limits: Limits) -> ExtractedDocument:
    title: str | None = None
    front = _FRONT_MATTER.match(text[:65536])
    if front and _FRONT_MATTER_KEY.match(front.group(1).lstrip()):
        # YAML front matter is metadata, not text (and would parse as a setext heading).
        found = _FRONT_MATTER_TITLE.search(front.group(1))
        if found:
            title = _title(found.group(1).strip("\"'"))
        text = text[front.end() :]
    sections = _Sections(limits.max_chars)
    first_h1 = _walk_markdown(_markdown_parser().parse(text), sections)
    return ExtractedDocument(DocumentType.MARKDOWN, title or first_h1, sections.finish(), None)


def _walk_markdown(tokens: Sequence[Token], sections: _Sections) -> str | None:
    """Feeds the sections; returns the first level-1 heading (the title)."""
    first_h1: str | None = None
    # Lists and tables become one block of lines, so a list stays together when chunked.
    lines: list[str] = []
    containers = 0
    markers: list[str] = []  # the marker each open list item still owes its first line
    row: list[str] = []
    for index, token in enumerate(tokens):
        kind = token.type
        if kind == "heading_open":
            inline = tokens[index + 1]
            heading = _markdown_inline(inline.children or [])
            level = int(token.tag[1:])
            sections.heading(level, heading)
            if level == 1 and first_h1 is None:
                first_h1 = _title(heading)
        elif kind in ("bullet_list_open", "ordered_list_open", "table_open"):
            containers += 1
        elif kind in ("bullet_list_close", "ordered_list_close", "table_close"):
            containers -= 1
            if containers == 0 and lines:
                sections.block("\n".join(lines))
                lines = []
        elif kind == "list_item_open":
            markers.append(f"{token.info}. " if token.info else "- ")
        elif kind == "list_item_close":
            if markers:
                markers.pop()
        elif kind == "tr_open":
            row = []
        elif kind == "tr_close":
            lines.append(" | ".join(cell for cell in row if cell))
        elif kind == "inline":
            previous = tokens[index - 1].type if index else ""
            content = _markdown_inline(token.children or [])
            if previous in ("th_open", "td_open"):
                row.append(_clean_line(content))
            elif previous == "paragraph_open":
                _markdown_block(content, sections, lines, containers, markers)
        elif kind in ("fence", "code_block", "html_block"):
            # Raw HTML in Markdown is kept as the text it is, never interpreted.
            _markdown_block(token.content, sections, lines, containers, markers)
    if lines:
        sections.block("\n".join(lines))
    return first_h1


def _markdown_block(
    text: str, sections: _Sections, lines: list[str], containers: int, markers: list[str]
) -> None:
    if not containers:
        sections.block(text)
        return
    if markers and markers[-1]:
        text = markers[-1] + text
        markers[-1] = ""  # later paragraphs of the same item carry no marker
    lines.append(text)


def _markdown_inline(children: Iterable[Token]) -> str:
    parts: list[str] = []
    links: list[tuple[str, int]] = []
    for child in children:
        kind = child.type
        if kind in ("text", "text_special", "code_inline", "html_inline"):
            parts.append(child.content)
        elif kind == "softbreak":
            parts.append(" ")
        elif kind == "hardbreak":
            parts.append("\n")
        elif kind == "image":
            if child.content:
                parts.append(child.content)
        elif kind == "link_open":
            links.append((str(child.attrGet("href") or ""), len(parts)))
        elif kind == "link_close" and links:
            href, start = links.pop()
            if not "".join(parts[start:]).strip():
                parts.append(href)  # a link with no text: its address is all there is
    return "".join(parts)


# Plain text


def _extract_text(text: str, limits: Limits) -> ExtractedDocument:
    sections = _Sections(limits.max_chars)
    sections.block(text)
    return ExtractedDocument(DocumentType.TEXT, None, sections.finish(), None)
