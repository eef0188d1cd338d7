"""The work counters of text extraction, one by one: each refuses past its limit with a
readable `DocumentTooLarge` naming the limit, counts what is really there (not what a
file claims), and lets normal documents through with the default limits."""

from __future__ import annotations

import io
import time
import zipfile
import zlib

import docx
import pytest

from cybergine.knowledge.extract import (
    CorruptDocument,
    DocumentTooLarge,
    DocumentType,
    Limits,
    extract,
)
from cybergine.knowledge.extract.errors import Budget
from cybergine.knowledge.extract.zips import read_member
from tests.support.hostile_files import (
    _BODY_CLOSE,
    _BODY_OPEN,
    docx_of,
    hostile_documents,
    pages_pdf,
    raw_zip,
    repeated_deflate,
    stream_object,
    zlib_wrap,
)


def refused(data: bytes, limits: Limits, **options: str) -> DocumentTooLarge:
    with pytest.raises(DocumentTooLarge) as raised:
        extract(data, limits=limits, **options)
    assert raised.value.status == 413
    assert raised.value.detail  # words for the uploader
    return raised.value


# --- The counter ---------------------------------------------------------------------


def test_a_budget_refuses_once_spent_and_can_be_raised() -> None:
    budget = Budget(10, lambda limit: DocumentTooLarge("no", limit="x", maximum=limit))
    budget.spend(10)
    with pytest.raises(DocumentTooLarge) as raised:
        budget.spend()
    assert raised.value.extra == {"limit": "x", "maximum": 10}
    budget.allow(5)
    budget.spend(4)  # 15 of 15
    with pytest.raises(DocumentTooLarge):
        budget.spend()


def test_limits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="positive"):
        Limits(max_pdf_operators=0)


# --- Zip members ---------------------------------------------------------------------


def deflated(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
    return compressor.compress(data) + compressor.flush()


def member(data: bytes, *, declared: int | None = None) -> tuple[zipfile.ZipFile, zipfile.ZipInfo]:
    size = len(data) if declared is None else declared
    entry = ("part.xml", deflated(data), zlib.crc32(data), size, zipfile.ZIP_DEFLATED)
    archive = zipfile.ZipFile(io.BytesIO(raw_zip([entry])))
    return archive, archive.getinfo("part.xml")


def test_a_member_is_counted_as_it_inflates_not_by_its_stated_size() -> None:
    archive, info = member(bytes(10 * 1024 * 1024))
    budget = Budget(1024 * 1024, lambda limit: DocumentTooLarge("x", limit="y", maximum=limit))
    with pytest.raises(DocumentTooLarge):
        read_member(archive, info, budget)
    assert budget.spent <= 1024 * 1024 + 64 * 1024  # stopped within one piece of the limit


@pytest.mark.parametrize("declared", [100, 10_000_000])
def test_a_member_whose_stated_size_lies_is_corrupt(declared: int) -> None:
    archive, info = member(b"<a>" + b"x" * 100_000 + b"</a>", declared=declared)
    budget = Budget(50_000_000, lambda limit: DocumentTooLarge("x", limit="y", maximum=limit))
    with pytest.raises(CorruptDocument):
        read_member(archive, info, budget)
    assert budget.spent <= 100_000 + 64 * 1024


# --- PDF -----------------------------------------------------------------------------

_LINE = b"BT /F1 11 Tf 72 %d Td (Opening hours are nine to five, every day.) Tj ET\n"


def text_stream(lines: int) -> bytes:
    return b"".join(_LINE % (720 - 14 * (n % 50)) for n in range(lines))


def test_pages_that_share_their_content_are_read_once() -> None:
    stream = stream_object(text_stream(40))  # 40 x 4 operators
    limits = Limits(max_pdf_operators=400)
    shared = extract(pages_pdf([4] * 200, [stream]), limits=limits)
    assert shared.page_count == 200
    assert len(shared.sections) == 200
    # The same pages, each with its own copy of the stream: every page is parsed.
    copies = pages_pdf(list(range(4, 204)), [stream] * 200)
    assert refused(copies, limits).extra == {"limit": "pdf_operators", "maximum": 400}


def test_operators_inside_forms_are_counted_at_every_use() -> None:
    form = stream_object(
        text_stream(10),
        extra=b" /Type /XObject /Subtype /Form /BBox [0 0 612 792] "
        b"/Resources << /Font << /F1 3 0 R >> >>",
    )
    page = stream_object(b"/Fm0 Do\n" * 50)
    data = pages_pdf([5], [form, page], xobjects=b" /XObject << /Fm0 4 0 R >>")
    assert "Opening hours" in extract(data).text
    assert refused(data, Limits(max_pdf_operators=1_000)).extra["limit"] == "pdf_operators"


def test_content_without_text_gets_a_fixed_allowance_and_text_earns_more() -> None:
    empty = b"BT /F1 12 Tf () Tj ET\n" * 500  # 11 KB a page, no text
    wordy = text_stream(200)  # 15 KB a page, 8,800 characters of text
    limits = Limits(max_pdf_content_bytes=50_000, pdf_content_bytes_per_char=4)
    assert extract(pages_pdf([4] * 1, [stream_object(wordy)]), limits=limits).sections
    text = pages_pdf(list(range(4, 24)), [stream_object(wordy)] * 20)
    assert extract(text, limits=limits).page_count == 20  # 300 KB of content, paid in text
    blank = pages_pdf(list(range(4, 24)), [stream_object(empty)] * 20)
    assert refused(blank, limits).extra == {"limit": "pdf_content_bytes", "maximum": 50_000}


def test_one_stream_larger_than_the_stream_limit_is_refused() -> None:
    data = pages_pdf([4], [stream_object(text_stream(2_000))])  # 150 KB
    error = refused(data, Limits(max_pdf_stream_bytes=100_000))
    assert error.extra == {"limit": "pdf_stream_bytes", "maximum": 100_000}


def test_a_stream_that_inflates_past_the_stream_limit_stops_decompressing() -> None:
    bomb = zlib_wrap(repeated_deflate(b" ", 512 * 1024 * 1024))  # 512 MiB in 0.5 MB
    data = pages_pdf([4], [stream_object(bomb, flate=True)])
    started = time.process_time()
    assert refused(data, Limits()).extra["limit"] == "pdf_structure"
    assert time.process_time() - started < 1


@pytest.mark.slow  # builds and reads a large document
def test_fonts_are_charged_for_every_page_that_reads_them() -> None:
    """pypdf reads a page's fonts afresh for every page: a large shared character map
    is charged to each."""
    document = next(d for d in hostile_documents() if d.name == "pdf-shared-cmap")
    assert refused(document.data, Limits()).extra["limit"] == "pdf_content_bytes"


def test_forms_nested_past_the_limit_are_damage() -> None:
    objects = [
        stream_object(
            b"/Fn Do",
            extra=b" /Type /XObject /Subtype /Form /BBox [0 0 9 9] "
            b"/Resources << /Font << /F1 3 0 R >> /XObject << /Fn %d 0 R >> >>" % (5 + level),
        )
        for level in range(40)
    ]
    objects.append(stream_object(b"BT /F1 9 Tf (x) Tj ET /Fn Do"))
    data = pages_pdf([44], objects, xobjects=b" /XObject << /Fn 4 0 R >>")
    with pytest.raises(CorruptDocument):
        extract(data)


@pytest.mark.slow  # builds and reads a large document
def test_a_500_page_manual_passes_the_default_limits() -> None:
    """Some 45 lines of text a page, each line its own text object, as word processors
    write them: 2.8 MB of content streams, more than the allowance for content without
    text, paid for by the text."""
    streams = [
        stream_object(text_stream(45).replace(b"nine", b"%03d" % page)) for page in range(500)
    ]
    data = pages_pdf(list(range(4, 504)), streams)
    document = extract(data)
    assert document.page_count == 500
    assert len(document.text) > 500 * 45 * 40


# --- Word ----------------------------------------------------------------------------


def paragraphs(count: int, text: bytes = b"") -> bytes:
    run = b"<w:r><w:t>" + text + b"</w:t></w:r>" if text else b""
    return _BODY_OPEN + (b"<w:p>" + run + b"</w:p>") * count + _BODY_CLOSE


def test_word_elements_are_counted_before_python_docx_builds_its_tree() -> None:
    data = docx_of(paragraphs(3_000, b"Hello"))
    assert extract(data).type is DocumentType.DOCX
    error = refused(data, Limits(max_xml_elements=5_000))
    assert error.extra == {"limit": "xml_elements", "maximum": 5_000}


def test_word_paragraphs_and_cells_are_counted_before_python_docx_walks_them() -> None:
    data = docx_of(paragraphs(3_000, b"Hello"))
    assert refused(data, Limits(max_word_paragraphs=2_000)).extra == {
        "limit": "paragraphs",
        "maximum": 2_000,
    }
    cells = b"<w:tbl><w:tr>" + b"<w:tc><w:p/></w:tc>" * 1_500 + b"</w:tr></w:tbl>"
    table = docx_of(_BODY_OPEN + cells + paragraphs(1, b"x")[len(_BODY_OPEN) :])
    assert extract(table).sections
    assert refused(table, Limits(max_word_paragraphs=2_000)).extra["limit"] == "paragraphs"


def test_word_nesting_is_measured() -> None:
    nested = b"<w:tbl><w:tr><w:tc>" * 10 + b"<w:p/>" + b"</w:tc></w:tr></w:tbl>" * 10
    data = docx_of(_BODY_OPEN + nested + b"<w:p><w:r><w:t>x</w:t></w:r></w:p>" + _BODY_CLOSE)
    assert extract(data).sections
    assert refused(data, Limits(max_depth=20)).extra == {"limit": "depth", "maximum": 20}


def test_word_parts_are_counted_as_they_inflate() -> None:
    data = docx_of(paragraphs(10, b"Hello"), extra=[("customXml/item1.xml", bytes(3_000_000))])
    error = refused(data, Limits(max_unpacked_bytes=2_000_000))
    assert error.extra == {"limit": "unpacked_bytes", "maximum": 2_000_000}


def test_binary_parts_of_a_word_document_are_never_inflated() -> None:
    """Pictures are no text: a 200 MiB one (deflated to 200 KB) costs nothing."""
    picture = ("word/media/image1.png", repeated_deflate(b"\0", 200 << 20), 0, 200 << 20, 8)
    source = zipfile.ZipFile(io.BytesIO(docx_of(paragraphs(3, b"Hello"))))
    entries = [
        (info.filename, deflated(data := source.read(info)), zlib.crc32(data), len(data), 8)
        for info in source.infolist()
    ]
    started = time.process_time()
    assert "Hello" in extract(raw_zip([*entries, picture])).text
    assert time.process_time() - started < 1


def test_a_real_word_document_of_nearly_20_mb_with_pictures_passes() -> None:
    document = docx.Document()
    for number in range(300):
        document.add_heading(f"Chapter {number}", level=1)
        document.add_paragraph("Opening hours are nine to five, every day of the week. " * 20)
    out = io.BytesIO()
    document.save(out)
    pictures = [(f"word/media/photo{n}.jpeg", bytes(range(256)) * 4_000) for n in range(19)]
    data = zipfile.ZipFile(io.BytesIO(out.getvalue()))
    rebuilt = io.BytesIO()
    with zipfile.ZipFile(rebuilt, "w", zipfile.ZIP_STORED) as archive:
        for info in data.infolist():
            archive.writestr(info, data.read(info))
        for name, content in pictures:
            archive.writestr(name, content)
    assert len(rebuilt.getvalue()) > 18 * 1024 * 1024
    extracted = extract(rebuilt.getvalue())
    assert len(extracted.sections) == 300


def test_a_word_document_of_too_many_parts_is_refused_from_its_directory() -> None:
    data = docx_of(paragraphs(1, b"x"), extra=[(f"x/{n}", b"") for n in range(20)])
    error = refused(data, Limits(max_zip_entries=10))
    assert error.extra == {"limit": "zip_entries", "maximum": 10}


# --- Markdown, HTML, text ------------------------------------------------------------


def test_markdown_block_tokens_are_counted_as_they_are_made() -> None:
    data = b"# List\n\n" + b"- item\n" * 1_000
    assert extract(data).sections
    assert refused(data, Limits(max_nodes=1_000)).extra == {"limit": "nodes", "maximum": 1_000}


def test_markdown_inline_tokens_are_counted_too() -> None:
    data = b"# Emphasis\n\n" + b"*a* " * 1_000  # one paragraph: three block tokens
    assert refused(data, Limits(max_nodes=1_000)).extra["limit"] == "nodes"


def test_markdown_lines_and_size_are_checked_before_parsing() -> None:
    data = b"# Lines\n" + b"\n" * 1_000
    assert refused(data, Limits(max_markdown_lines=500)).extra["limit"] == "markdown_lines"
    assert refused(data, Limits(max_markup_chars=500)).extra["limit"] == "markup_chars"


def test_plain_text_size_is_checked_before_cleaning() -> None:
    error = refused(b"word " * 1_000, Limits(max_markup_chars=4_000))
    assert error.extra == {"limit": "markup_chars", "maximum": 4_000}


def html_page(body: bytes) -> bytes:
    return b"<!doctype html><html><head><title>T</title></head><body>" + body + b"</body></html>"


def test_html_elements_and_attributes_are_counted_while_parsing() -> None:
    elements = html_page(b"<p>Text</p>" + b"<b></b>" * 1_000)
    assert extract(elements).sections
    assert refused(elements, Limits(max_nodes=1_000)).extra == {"limit": "nodes", "maximum": 1_000}
    attributes = html_page(b'<p a="1" b="2" c="3">Text</p>' * 300)
    assert refused(attributes, Limits(max_nodes=1_000)).extra["limit"] == "nodes"


def test_one_enormous_tag_is_refused_before_the_parser_reads_its_attributes() -> None:
    """The standard parser's regular expressions take some 800 bytes per attribute of
    one tag: a 20 MB tag would take 4 GB before any handler saw it."""
    data = html_page(b"<p" + b" a=b" * 2_000_000 + b">x</p>")
    started = time.process_time()
    assert refused(data, Limits()).extra["limit"] == "nodes"
    assert time.process_time() - started < 1


def test_a_long_attribute_value_is_no_attack() -> None:
    picture = b"data:image/png;base64," + b"A" * 3_000_000
    data = html_page(b'<p>Before</p><img src="' + picture + b'"><p>After</p>')
    assert extract(data).text == "Before\n\nAfter"


def test_html_nesting_is_measured() -> None:
    data = html_page(b"<div>" * 100 + b"Deep" + b"</div>" * 100)
    assert extract(data).text == "Deep"
    assert refused(data, Limits(max_depth=50)).extra == {"limit": "depth", "maximum": 50}


def test_html_text_beyond_the_limit_outside_the_main_content_is_no_refusal() -> None:
    """The body is read alongside the main content, in case the main content turns out
    empty; its going past the character limit only matters if it is the content."""
    data = html_page(b"<main><p>Main text</p></main>" + b"<p>" + b"word " * 2_000 + b"</p>")
    assert extract(data, limits=Limits(max_chars=1_000)).text == "Main text"
    empty_main = html_page(b"<main></main><p>" + b"word " * 2_000 + b"</p>")
    assert refused(empty_main, Limits(max_chars=1_000)).extra["limit"] == "chars"


@pytest.mark.parametrize("construct", [b"<!--", b"<!", b"</", b"<?", b"<a"])
def test_a_page_ending_in_a_long_unterminated_construct_is_damaged(construct: bytes) -> None:
    """Closing the standard parser on one rescans the rest of the page for each "<"."""
    data = html_page(b"<p>Text</p>") + construct * (200_000 // len(construct))
    started = time.process_time()
    with pytest.raises(CorruptDocument):
        extract(data)
    assert time.process_time() - started < 1


def test_markdown_parser_steps_are_counted() -> None:
    """A "[" makes markdown-it look ahead for a whole link: a megabyte of them took 17 s
    while making one token. Link reference definitions cost as much at block level."""
    links = b"# Links\n\n" + b"![" * 50_000
    error = refused(links, Limits(max_markdown_steps=100_000))
    assert error.extra == {"limit": "markdown_steps", "maximum": 100_000}
    definitions = b"# Refs\n\n" + b"".join(b"[l%d]: /u\n" % n for n in range(10_000))
    assert refused(definitions, Limits(max_markdown_steps=100_000)).extra["limit"] == (
        "markdown_steps"
    )


@pytest.mark.slow  # builds and reads a large document
def test_a_large_markdown_manual_passes_the_default_limits() -> None:
    section = (
        "## Section {n}\n\nOpening hours and [refunds](https://example.com/{n}) with `code` "
        "and *emphasis*: the shop answers every day.\nSecond line - still the paragraph.\n\n"
        "- one\n- two\n- [ ] three\n\n| a | b |\n|---|---|\n| {n} | x |\n\n"
    )
    text = "# Manual\n\n" + "".join(section.format(n=n) for n in range(4_000))
    assert len(text) > 800_000  # 265,000 tokens
    document = extract(text.encode(), filename="manual.md")
    assert len(document.sections) == 4_000
