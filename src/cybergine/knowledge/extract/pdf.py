"""PDF: the text of each page under the heading path of its bookmarks.

pypdf parses a page's content stream afresh for every page and every form that uses it,
and it does so before any text comes out: 500 pages pointing at one stream of empty text
operators cost 38 minutes of CPU, yielding nothing that a character limit could count.
Here that work is counted before and while it is done, for the whole document: the
decoded bytes of every content stream about to be parsed (a stream counts each time a
page or a form uses it; pages that share their content and resources are read once) and
every operator (pypdf calls our visitor before each one, and the visitor may refuse).
The byte allowance grows with the text found, so real pages pay for their drawing
instructions with text while a file that yields none is stopped within seconds."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, Final

import pypdf
from pypdf.errors import DependencyError, LimitReachedError
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, StreamObject

from cybergine.errors import CybergineError
from cybergine.knowledge.extract.document import DocumentType, ExtractedDocument, Limits
from cybergine.knowledge.extract.errors import (
    SCANNED_PDF,
    Budget,
    CorruptDocument,
    DocumentTooLarge,
    EmptyDocument,
    EncryptedDocument,
    megabytes,
    too_much_work,
)
from cybergine.knowledge.extract.sections import Sections, clean_line, title_of

# pypdf recurses through several frames per form XObject; real forms nest a few deep.
_MAX_FORM_NESTING: Final = 16
# Tokens (operators and operands) pypdf may hold for one parsed content stream: about
# 150 bytes each, so this bounds one page's parse at roughly 150 MB.
_MAX_TOKENS_PER_STREAM: Final = 1_000_000
# Fonts, charged as content bytes (see _font_cost): a character map parses some four
# times faster than content; a width or encoding entry costs about as much as 8 bytes.
_CMAP_DISCOUNT: Final = 4
_TABLE_ENTRY_COST: Final = 8
_MAX_OUTLINE_ENTRIES: Final = 10_000
_MAX_OUTLINE_DEPTH: Final = 6
# What pypdf itself looks for before parsing a stream for text: text-showing operators,
# and forms, which may hold text.
_TEXT_OPERATOR = re.compile(rb"T[jJ]|Do|['\"]")


def _too_complex() -> DocumentTooLarge:
    return DocumentTooLarge(
        "This PDF is built in a way that would take too much work to read (a part of it "
        "is larger or nested deeper than the limits allow). Print it to a new PDF, or save "
        "it again from the program that made it, and upload that copy.",
        limit="pdf_structure",
        maximum=0,
    )


@contextmanager
def _pypdf_limits(limits: Limits) -> Iterator[None]:
    """pypdf's own limits, tightened: no stream decodes past ``max_pdf_stream_bytes``
    (a 1 MB stream may inflate to 1 GiB), no content stream parses past a token count."""
    stream = limits.max_pdf_stream_bytes
    with pypdf.apply_configuration(
        zlib_maximum_output_length=stream,
        lzw_maximum_output_length=stream,
        run_length_maximum_output_length=stream,
        brotli_maximum_output_length=stream,
        array_based_stream_maximum_output_length=stream,
        stream_decoding_work_maximum_length=4 * stream,
        stream_parsing_work_maximum_count=_MAX_TOKENS_PER_STREAM,
        outline_maximum_entries=_MAX_OUTLINE_ENTRIES,
        outline_maximum_depth=min(limits.max_depth, 100),
    ):
        yield


class _ContentWork:
    """The work of reading one PDF's content, counted across its pages and forms.

    pypdf swallows (and logs) any exception raised while it reads a form, then carries on
    with the page; so the first refusal is kept, raised again before every later operator,
    and checked after each page."""

    def __init__(self, limits: Limits) -> None:
        self.bytes = Budget(limits.max_pdf_content_bytes, self._too_many_bytes)
        self.operators = Budget(
            limits.max_pdf_operators,
            lambda limit: too_much_work("drawing instructions", limit, limit="pdf_operators"),
        )
        self._max_stream = limits.max_pdf_stream_bytes
        self._per_char = limits.pdf_content_bytes_per_char
        self._resources: list[Any] = []
        self.refusal: CybergineError | None = None

    @staticmethod
    def _too_many_bytes(limit: int) -> DocumentTooLarge:
        return DocumentTooLarge(
            f"This PDF holds more than {megabytes(limit)} of drawing instructions for the "
            "text it contains: more work than reading it may take. Print it to a new PDF "
            "or split it, and upload that.",
            limit="pdf_content_bytes",
            maximum=limit,
        )

    def stream_data(self, stream: Any) -> bytes:
        """A content stream's decoded bytes, refused past the one-stream limit."""
        data = stream.get_data() if isinstance(stream, StreamObject) else b""
        if len(data) > self._max_stream:
            raise DocumentTooLarge(
                f"A page of this PDF holds more than {megabytes(self._max_stream)} of "
                "drawing instructions, the limit.",
                limit="pdf_stream_bytes",
                maximum=self._max_stream,
            )
        return data

    def start_page(self, resources: Any, size: int) -> None:
        self.bytes.spend(size)
        self._resources = [resources]

    def earn(self, chars: int) -> None:
        self.bytes.allow(chars * self._per_char)

    def check(self) -> None:
        if self.refusal is not None:
            raise self.refusal

    def before(self, operator: bytes, operands: Any, _cm: Any = None, _tm: Any = None) -> None:
        self.check()
        try:
            self.operators.spend()
            if operator == b"Do":
                self._resources.append(self._enter_form(operands))
        except CybergineError as refusal:
            self.refusal = refusal
            raise

    def after(self, operator: bytes, _operands: Any, _cm: Any = None, _tm: Any = None) -> None:
        if operator == b"Do" and len(self._resources) > 1:
            self._resources.pop()

    def _enter_form(self, operands: Any) -> Any:
        """Charges the form about to be read (pypdf parses it again at each use) and
        returns the resources its own operators will use."""
        try:
            xobjects = self._resources[-1]["/XObject"].get_object()
            form = xobjects[operands[0]].get_object()
            is_form = isinstance(form, StreamObject) and form.get("/Subtype") == "/Form"
        except Exception:  # no such form: pypdf skips it too
            return None
        if not is_form:
            return None  # an image: pypdf does not decode it for text
        if len(self._resources) > _MAX_FORM_NESTING:
            raise CorruptDocument()
        self.bytes.spend(len(self.stream_data(form)))
        resources = form.get("/Resources")
        return resources.get_object() if resources is not None else None


def extract_pdf(data: bytes, limits: Limits) -> ExtractedDocument:
    try:
        with _pypdf_limits(limits):
            return _read(data, limits)
    except LimitReachedError as exc:
        raise _too_complex() from exc


def _read(data: bytes, limits: Limits) -> ExtractedDocument:
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
    sections = Sections(limits.max_chars)
    work = _ContentWork(limits)
    read: dict[tuple[Any, Any, int], str] = {}  # page text by what the page is made of
    failures = 0
    next_entry = 0
    headings: tuple[str, ...] = ()
    for number, page in enumerate(pages):
        while next_entry < len(outline) and outline[next_entry][0] <= number:
            headings = outline[next_entry][1]
            next_entry += 1
        key = _content_key(page)
        raw = read.get(key) if key is not None else None
        if raw is None:
            try:
                raw = _page_text(page, work)
            except (CybergineError, MemoryError, LimitReachedError):
                raise
            except Exception:  # one unreadable page should not cost the rest of the document
                failures += 1
                continue
            if key is not None:
                read[key] = raw
        before = sections.chars
        sections.section(headings, raw)
        work.earn(sections.chars - before)
    if failures * 2 > page_count:
        raise CorruptDocument()
    found = sections.finish()
    if not found and page_count:
        raise EmptyDocument(SCANNED_PDF)
    return ExtractedDocument(DocumentType.PDF, _pdf_title(reader), found, page_count)


def _page_text(page: pypdf.PageObject, work: _ContentWork) -> str:
    contents = page.get("/Contents")
    streams: Sequence[Any] = contents if isinstance(contents, ArrayObject) else [contents]
    data = [work.stream_data(stream.get_object()) for stream in streams if stream is not None]
    if not any(_TEXT_OPERATOR.search(part) for part in data):
        return ""  # a figure or a blank page: pypdf would find no text either
    resources = page.get("/Resources")
    resources = resources.get_object() if resources is not None else None
    work.start_page(resources, sum(map(len, data)) + _font_cost(resources, work))
    text = page.extract_text(visitor_operand_before=work.before, visitor_operand_after=work.after)
    work.check()
    return text


def _font_cost(resources: Any, work: _ContentWork) -> int:
    """What reading the page's fonts costs, in content bytes: pypdf reads every font of
    a page afresh for each page, its character map (a few times faster than content) and
    its width and encoding tables. One 1.4 MB character map shared by the pages of a
    10 KB file took half a second a page."""
    try:
        fonts = resources["/Font"].get_object() if resources is not None else {}
        font_objects = [font.get_object() for font in fonts.values()]
    except Exception:  # no usable fonts: pypdf reads none either
        return 0
    cost = 0
    for font in font_objects:
        if not isinstance(font, DictionaryObject):
            continue
        to_unicode = font.get("/ToUnicode")
        if to_unicode is not None:
            cost += len(work.stream_data(to_unicode.get_object())) // _CMAP_DISCOUNT
        tables = [font.get("/Widths"), _get(font.get("/Encoding"), "/Differences")]
        descendants = _resolved(font.get("/DescendantFonts"))
        if isinstance(descendants, ArrayObject) and descendants:
            tables.append(_get(descendants[0], "/W"))
        for table in map(_resolved, tables):
            if isinstance(table, ArrayObject):
                cost += len(table) * _TABLE_ENTRY_COST
    return cost


def _resolved(value: Any) -> Any:
    return value.get_object() if value is not None else None


def _get(holder: Any, key: str) -> Any:
    holder = _resolved(holder)
    return holder.get(key) if isinstance(holder, DictionaryObject) else None


def _content_key(page: pypdf.PageObject) -> tuple[Any, Any, int] | None:
    """What makes two pages read the same: the same content streams with the same
    resources (the same objects in the file) and rotation. None when they are not shared
    objects."""
    contents = page.raw_get("/Contents") if "/Contents" in page else None
    if isinstance(contents, IndirectObject):
        content_id: Any = (contents.idnum, contents.generation)
    elif isinstance(contents, ArrayObject) and all(
        isinstance(part, IndirectObject) for part in contents
    ):
        content_id = tuple((part.idnum, part.generation) for part in contents)
    else:
        return None
    resources = page.raw_get("/Resources") if "/Resources" in page else None
    if isinstance(resources, IndirectObject):
        resources_id: Any = (resources.idnum, resources.generation)
    elif isinstance(resources, DictionaryObject):
        resources_id = id(resources)  # inherited: the same object on every page
    else:
        return None
    return content_id, resources_id, page.rotation


def _pdf_title(reader: pypdf.PdfReader) -> str | None:
    try:
        metadata = reader.metadata
        return title_of(metadata.title) if metadata is not None else None
    except Exception:  # metadata is optional; a broken info dictionary is no reason to fail
        return None


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
            title = clean_line(str(getattr(item, "title", "") or ""))
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
