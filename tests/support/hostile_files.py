"""Hostile uploads, built in memory byte by byte: no committed binaries, and the bytes are
exactly the attack (no library "fixes" a PDF or zip on the way out).

Each document is small enough to upload (under the 20 MiB limit) and costs far more to
parse than its size suggests: CPU bombs (work repeated per page or per invocation),
memory bombs (decompression, parser trees many times the input) and malformed files
(nesting deeper than any parser's recursion, sizes that lie).

    python -m tests.support.hostile_files OUTDIR    # writes every document to OUTDIR
"""

from __future__ import annotations

import functools
import io
import struct
import sys
import time
import zipfile
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "HostileDocument",
    "cpu_bomb_pdf",
    "hostile_documents",
]

PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
MARKDOWN = "text/markdown"
HTML = "text/html"
TEXT = "text/plain"
# Under the upload limit (20 MiB) with room for a multipart envelope.
NEAR_UPLOAD_LIMIT = 19_900 * 1024


@dataclass(frozen=True)
class HostileDocument:
    name: str
    filename: str
    content_type: str
    data: bytes
    kind: str  # "cpu", "memory" or "malformed"


# --- Raw deflate, built without compressing the whole payload --------------------------


def repeated_deflate(unit: bytes, count: int, *, prefix: bytes = b"", suffix: bytes = b"") -> bytes:
    """Raw deflate data inflating to ``prefix + unit * count + suffix``, in milliseconds
    whatever ``count`` is: a full flush ends each piece byte-aligned with no reference
    back, so one compressed 1 MiB run of units can be repeated as it is."""

    def piece(data: bytes) -> bytes:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -15)
        return compressor.compress(data) + compressor.flush(zlib.Z_FULL_FLUSH)

    per_run = max(1, (1024 * 1024) // len(unit))
    runs, rest = divmod(count, per_run)
    final = zlib.compressobj(9, zlib.DEFLATED, -15)
    end = final.compress(b"") + final.flush(zlib.Z_FINISH)
    return piece(prefix) + piece(unit * per_run) * runs + piece(unit * rest + suffix) + end


def zlib_wrap(raw_deflate: bytes, checksum: int = 1) -> bytes:
    """A zlib stream (what PDF's /FlateDecode holds) around raw deflate data. The Adler-32
    is not checked by the parsers under attack before they have inflated everything."""
    return b"\x78\xda" + raw_deflate + struct.pack(">I", checksum)


# --- PDF --------------------------------------------------------------------------------

_FONT = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"


def build_pdf(objects: Sequence[bytes], *, root: int = 1, info: int | None = None) -> bytes:
    """A PDF of the given object bodies (object n is ``objects[n - 1]``) with a correct
    cross-reference table; ``info``: the number of its document-information object."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    trailer_info = b" /Info %d 0 R" % info if info is not None else b""
    out += b"trailer\n<< /Size %d /Root %d 0 R%s >>\n" % (len(objects) + 1, root, trailer_info)
    out += b"startxref\n%d\n%%%%EOF\n" % xref
    return bytes(out)


def stream_object(data: bytes, *, extra: bytes = b"", flate: bool = False) -> bytes:
    filters = b" /Filter /FlateDecode" if flate else b""
    return b"<< /Length %d%s%s >>\nstream\n%s\nendstream" % (len(data), filters, extra, data)


def pages_pdf(
    page_contents: Sequence[int],
    extra_objects: Sequence[bytes],
    *,
    xobjects: bytes = b"",
    outline: int | None = None,
) -> bytes:
    """A catalog (1), a page tree (2), a font (3), then ``extra_objects`` from 4 on and one
    page per entry of ``page_contents`` (the object number of its content stream)."""
    first_page = 4 + len(extra_objects)
    kids = b" ".join(b"%d 0 R" % (first_page + i) for i in range(len(page_contents)))
    outlines = b" /Outlines %d 0 R" % outline if outline is not None else b""
    # Resources and media box are inherited from the page tree, so a page costs 50 bytes.
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R%s >>" % outlines,
        b"<< /Type /Pages /Kids [%s] /Count %d /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 3 0 R >>%s >> >>" % (kids, len(page_contents), xobjects),
        _FONT,
        *extra_objects,
    ]
    for content in page_contents:
        objects.append(b"<< /Type /Page /Parent 2 0 R /Contents %d 0 R >>" % content)
    return build_pdf(objects)


# Text operators that show nothing: parsed and interpreted, never a character out.
_EMPTY_TEXT_OPS = b"BT /F1 12 Tf () Tj ET\n"


def cpu_bomb_pdf(*, pages: int = 500, operators: int = 1_000_000) -> HostileDocument:
    """500 pages that all point at ONE compressed content stream of empty text operators:
    a parser that reads each page's stream afresh repeats the whole stream 500 times, and
    no text ever comes out to trip a character limit."""
    content = zlib_wrap(repeated_deflate(_EMPTY_TEXT_OPS, operators // 4))
    data = pages_pdf([4] * pages, [stream_object(content, flate=True)])
    return HostileDocument("pdf-shared-content-stream", "shared-stream.pdf", PDF, data, "cpu")


def _pdf_shared_form() -> HostileDocument:
    """Worse than a shared stream: every page invokes one form XObject thousands of times,
    and the form's own stream is large, so work multiplies by pages times invocations."""
    form = zlib_wrap(repeated_deflate(_EMPTY_TEXT_OPS, 50_000))
    page = zlib_wrap(repeated_deflate(b"/Fm0 Do\n", 4_000))
    data = pages_pdf(
        [5] * 500,
        [
            stream_object(
                form,
                flate=True,
                extra=b" /Type /XObject /Subtype /Form /BBox [0 0 612 792] "
                b"/Resources << /Font << /F1 3 0 R >> >>",
            ),
            stream_object(page, flate=True),
        ],
        xobjects=b" /XObject << /Fm0 4 0 R >>",
    )
    return HostileDocument("pdf-shared-form", "shared-form.pdf", PDF, data, "cpu")


def _pdf_shared_cmap() -> HostileDocument:
    """500 pages of one character each, sharing a font whose character map has 100,000
    entries (1.4 MB, compressed to a few KB): pypdf reads a page's fonts afresh for
    every page, half a second each."""
    entries = b"".join(b"<%04x> <%04x>\n" % (code, code) for code in range(100))
    cmap = repeated_deflate(
        b"100 beginbfchar\n" + entries + b"endbfchar\n",
        1_000,
        prefix=b"/CIDInit /ProcSet findresource begin 12 dict begin begincmap "
        b"1 begincodespacerange <0000> <FFFF> endcodespacerange\n",
        suffix=b"endcmap CMapName currentdict /CMap defineresource pop end end",
    )
    pages = 500
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d /MediaBox [0 0 612 792] "
        b"/Resources << /Font << /F1 3 0 R >> >> >>"
        % (b" ".join(b"%d 0 R" % (5 + 2 * page) for page in range(pages)), pages),
        b"<< /Type /Font /Subtype /Type0 /BaseFont /X /Encoding /Identity-H "
        b"/DescendantFonts [] /ToUnicode 4 0 R >>",
        stream_object(zlib_wrap(cmap), flate=True),
    ]
    for page in range(pages):
        objects.append(b"<< /Type /Page /Parent 2 0 R /Contents %d 0 R >>" % (6 + 2 * page))
        objects.append(stream_object(b"BT /F1 12 Tf <00%02x> Tj ET" % (page % 100)))
    return HostileDocument("pdf-shared-cmap", "shared-cmap.pdf", PDF, build_pdf(objects), "cpu")


def _pdf_flate_bomb() -> HostileDocument:
    """One page whose content stream inflates from about 1 MB to 1 GiB of blanks."""
    content = zlib_wrap(repeated_deflate(b" ", 1 << 30))
    data = pages_pdf([4], [stream_object(content, flate=True)])
    return HostileDocument("pdf-flate-bomb", "flate-bomb.pdf", PDF, data, "memory")


def _pdf_many_operators() -> HostileDocument:
    """500 pages, each with its own stream of a million empty operators (no sharing to
    spot): only a budget of operators for the whole document stops it."""
    stream = stream_object(zlib_wrap(repeated_deflate(b"() Tj\n", 500_000)), flate=True)
    data = pages_pdf(list(range(4, 4 + 500)), [stream] * 500)
    return HostileDocument("pdf-many-operators", "many-operators.pdf", PDF, data, "cpu")


def _pdf_nested_forms() -> HostileDocument:
    """A chain of form XObjects each invoking the next, thousands deep: recursion in any
    walker that follows them."""
    depth = 5_000
    objects: list[bytes] = []
    for level in range(depth):
        # Object 4 + level; each form's resources name the next form.
        inner = b"/Fn Do" if level + 1 < depth else b"BT /F1 12 Tf (deep) Tj ET"
        following = b" /XObject << /Fn %d 0 R >>" % (5 + level) if level + 1 < depth else b""
        objects.append(
            stream_object(
                inner,
                extra=b" /Type /XObject /Subtype /Form /BBox [0 0 612 792] "
                b"/Resources << /Font << /F1 3 0 R >>%s >>" % following,
            )
        )
    objects.append(stream_object(b"/Fn Do"))
    data = pages_pdf([4 + depth], objects, xobjects=b" /XObject << /Fn 4 0 R >>")
    return HostileDocument("pdf-nested-forms", "nested-forms.pdf", PDF, data, "malformed")


def _pdf_deep_outline() -> HostileDocument:
    """Bookmarks nested 20,000 levels deep (each the only child of the one before)."""
    depth = 20_000
    first = 5
    objects: list[bytes] = [stream_object(b"BT /F1 12 Tf 72 720 Td (Text) Tj ET")]
    # Object 4: the content; 5: the outline root; 6 .. 6 + depth - 1: the items.
    objects.append(b"<< /Type /Outlines /First 6 0 R /Last 6 0 R /Count %d >>" % depth)
    page = 6 + depth
    for level in range(depth):
        number = 6 + level
        parent = first if level == 0 else number - 1
        child = b" /First %d 0 R /Last %d 0 R /Count 1" % (number + 1, number + 1)
        objects.append(
            b"<< /Title (Level %d) /Parent %d 0 R /Dest [%d 0 R /Fit]%s >>"
            % (level, parent, page, child if level + 1 < depth else b"")
        )
    data = pages_pdf([4], objects, outline=first)
    return HostileDocument("pdf-deep-outline", "deep-outline.pdf", PDF, data, "malformed")


def _pdf_deep_array() -> HostileDocument:
    """An array nested 200,000 deep inside the pages' resources: recursive object
    parsers overflow."""
    depth = 200_000
    nested = b"[" * depth + b"]" * depth
    content = stream_object(b"BT /F1 12 Tf 72 720 Td (Text) Tj ET")
    data = pages_pdf([4], [content], xobjects=b" /Junk %s" % nested)
    return HostileDocument("pdf-deep-array", "deep-array.pdf", PDF, data, "malformed")


# --- DOCX -------------------------------------------------------------------------------

_W = "http://schemas.openxmlformats.org/wordprocessingml/2006/main"
_CONTENT_TYPES = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    b'<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
    b'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/>'
    b'<Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-'
    b'officedocument.wordprocessingml.document.main+xml"/></Types>'
)
_ROOT_RELS = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    b'<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
    b'relationships/officeDocument" Target="word/document.xml"/></Relationships>'
)
_BODY_OPEN = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    b'<w:document xmlns:w="' + _W.encode() + b'"><w:body>'
)
_BODY_CLOSE = b"</w:body></w:document>"


def docx_of(document_xml: bytes, *, extra: Sequence[tuple[str, bytes]] = ()) -> bytes:
    """A minimal valid .docx around ``document_xml`` (zipfile, honest sizes)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", _CONTENT_TYPES)
        archive.writestr("_rels/.rels", _ROOT_RELS)
        archive.writestr("word/document.xml", document_xml)
        for name, data in extra:
            archive.writestr(name, data)
    return out.getvalue()


def raw_zip(entries: Sequence[tuple[str, bytes, int, int, int]]) -> bytes:
    """A zip written by hand: (name, raw deflate data, crc, declared size, method) per
    entry, so the declared sizes may lie about what the data inflates to."""
    out = bytearray()
    central = bytearray()
    for name, data, crc, declared, method in entries:
        encoded = name.encode()
        offset = len(out)
        out += struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(data), declared,
            len(encoded), 0,
        )  # fmt: skip
        out += encoded + data
        central += struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0x21, crc, len(data),
            declared, len(encoded), 0, 0, 0, 0, 0, offset,
        )  # fmt: skip
        central += encoded
    start = len(out)
    out += central
    out += struct.pack(
        "<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries), len(central), start, 0
    )
    return bytes(out)


def _stored(name: str, data: bytes) -> tuple[str, bytes, int, int, int]:
    return (name, data, zlib.crc32(data), len(data), zipfile.ZIP_STORED)


def _docx_empty_paragraphs() -> HostileDocument:
    """5.2 million empty paragraphs in under 50 KB: a tree of millions of XML elements."""
    body = _BODY_OPEN + b"<w:p/>" * 5_200_000 + _BODY_CLOSE
    return HostileDocument(
        "docx-empty-paragraphs", "empty-paragraphs.docx", DOCX, docx_of(body), "memory"
    )


def _docx_understated() -> HostileDocument:
    """document.xml inflates to 1 GiB while the zip directory says 2 KB: a check that
    trusts the directory lets it through, and zipfile inflates all of it in one call."""
    deflated = repeated_deflate(b"<w:p/>", (1 << 30) // 6, prefix=_BODY_OPEN)
    data = raw_zip(
        [
            _stored("[Content_Types].xml", _CONTENT_TYPES),
            _stored("_rels/.rels", _ROOT_RELS),
            ("word/document.xml", deflated, 0, 2048, zipfile.ZIP_DEFLATED),
        ]
    )
    return HostileDocument("docx-understated-size", "understated.docx", DOCX, data, "memory")


def _docx_many_entries() -> HostileDocument:
    """A valid document plus 400 parts of 20 MiB of zeros each (8 GiB), honestly declared."""
    zeros = repeated_deflate(b"\0", 20 * 1024 * 1024)
    crc = 0
    megabyte = bytes(1024 * 1024)
    for _ in range(20):
        crc = zlib.crc32(megabyte, crc)
    body = _BODY_OPEN + b"<w:p><w:r><w:t>Hello</w:t></w:r></w:p>" + _BODY_CLOSE
    entries = [
        _stored("[Content_Types].xml", _CONTENT_TYPES),
        _stored("_rels/.rels", _ROOT_RELS),
        _stored("word/document.xml", body),
    ]
    for index in range(400):
        entries.append(
            (f"customXml/item{index}.xml", zeros, crc, 20 * 1024 * 1024, zipfile.ZIP_DEFLATED)
        )
    return HostileDocument(
        "docx-many-entries", "many-entries.docx", DOCX, raw_zip(entries), "memory"
    )


def _docx_many_parts() -> HostileDocument:
    """60,000 tiny zip entries: a directory to read, not text."""
    body = _BODY_OPEN + b"<w:p><w:r><w:t>Hello</w:t></w:r></w:p>" + _BODY_CLOSE
    entries = [
        _stored("[Content_Types].xml", _CONTENT_TYPES),
        _stored("_rels/.rels", _ROOT_RELS),
        _stored("word/document.xml", body),
    ]
    entries.extend(_stored(f"x/{index}", b"") for index in range(60_000))
    return HostileDocument(
        "docx-many-parts", "many-parts.docx", DOCX, raw_zip(entries), "malformed"
    )


def _docx_nested_tables() -> HostileDocument:
    """Tables nested inside table cells, 80 deep (240 XML levels, under libxml2's own
    limit), each level with many cells holding text."""
    depth = 80
    cells = b"<w:tc><w:p><w:r><w:t>cell</w:t></w:r></w:p></w:tc>" * 200
    opening = b"<w:tbl><w:tr>" + cells + b"<w:tc>"
    closing = b"<w:p/></w:tc></w:tr></w:tbl>"
    body = _BODY_OPEN + opening * depth + b"<w:p/>" + closing * depth + _BODY_CLOSE
    return HostileDocument(
        "docx-nested-tables", "nested-tables.docx", DOCX, docx_of(body), "malformed"
    )


def _docx_many_short_paragraphs() -> HostileDocument:
    """A million one-letter paragraphs: few elements each, but python-docx walks every
    one (some 20 µs apiece)."""
    paragraph = b"<w:p><w:r><w:t>x</w:t></w:r></w:p>"
    body = _BODY_OPEN + paragraph * 1_000_000 + _BODY_CLOSE
    return HostileDocument(
        "docx-short-paragraphs", "short-paragraphs.docx", DOCX, docx_of(body), "cpu"
    )


def _docx_wide_row() -> HostileDocument:
    """One table row of 150,000 cells: the old walk compared each cell with every cell
    before it in the row."""
    cell = b"<w:tc><w:p><w:r><w:t>c</w:t></w:r></w:p></w:tc>"
    body = _BODY_OPEN + b"<w:tbl><w:tr>" + cell * 150_000 + b"</w:tr></w:tbl>" + _BODY_CLOSE
    return HostileDocument("docx-wide-row", "wide-row.docx", DOCX, docx_of(body), "cpu")


def _docx_deep_xml() -> HostileDocument:
    """Tables nested 100,000 deep: far past any XML parser's depth limit."""
    depth = 100_000
    body = (
        _BODY_OPEN
        + b"<w:tbl><w:tr><w:tc>" * depth
        + b"<w:p/>"
        + b"</w:tc></w:tr></w:tbl>" * depth
        + _BODY_CLOSE
    )
    return HostileDocument("docx-deep-xml", "deep-xml.docx", DOCX, docx_of(body), "malformed")


# --- Markdown, HTML, text ---------------------------------------------------------------


def _fill(unit: bytes, size: int, *, prefix: bytes = b"") -> bytes:
    return prefix + unit * ((size - len(prefix)) // len(unit))


def _markdown_documents() -> list[HostileDocument]:
    return [
        HostileDocument(
            "markdown-empty-list-items-4mib",
            "empty-items.md",
            MARKDOWN,
            _fill(b"-\n", 4 * 1024 * 1024, prefix=b"# Items\n\n"),
            "memory",
        ),
        HostileDocument(
            "markdown-empty-list-items",
            "empty-items-large.md",
            MARKDOWN,
            _fill(b"-\n", NEAR_UPLOAD_LIMIT, prefix=b"# Items\n\n"),
            "memory",
        ),
        HostileDocument(
            "markdown-nested-list-lines",
            "nested-list-lines.md",
            MARKDOWN,
            _fill(b"- 1. " * 4 + b"x\n", 3 * 1024 * 1024, prefix=b"# Lists\n\n"),
            "memory",
        ),
        HostileDocument(
            "markdown-nested-blockquotes",
            "blockquotes.md",
            MARKDOWN,
            _fill(b">" * 5_000 + b" x\n", NEAR_UPLOAD_LIMIT, prefix=b"# Quotes\n\n"),
            "cpu",
        ),
        HostileDocument(
            "markdown-nested-lists",
            "nested-lists.md",
            MARKDOWN,
            b"# Lists\n\n" + b"".join(b"  " * level + b"- x\n" for level in range(1_000)) * 19,
            "cpu",
        ),
        HostileDocument(
            "markdown-emphasis",
            "emphasis.md",
            MARKDOWN,
            _fill(b"*a **b ", NEAR_UPLOAD_LIMIT // 4, prefix=b"# Emphasis\n\n"),
            "cpu",
        ),
    ]


def _html_documents() -> list[HostileDocument]:
    prefix = b"<!doctype html><html><body>"
    return [
        HostileDocument(
            "html-nested-divs",
            "nested-divs.html",
            HTML,
            _fill(b"<div>", NEAR_UPLOAD_LIMIT, prefix=prefix),
            "memory",
        ),
        HostileDocument(
            "html-empty-elements",
            "empty-elements.html",
            HTML,
            _fill(b"<p></p>", NEAR_UPLOAD_LIMIT, prefix=prefix),
            "memory",
        ),
        HostileDocument(
            "html-empty-elements-4mib",
            "empty-elements-small.html",
            HTML,
            _fill(b"<b></b>", 4 * 1024 * 1024, prefix=prefix + b"<p>Text</p>"),
            "memory",
        ),
        HostileDocument(
            "html-unterminated-declarations",
            "unterminated.html",
            HTML,
            # The standard parser rescans the rest of the page for each one: quadratic.
            _fill(b"<!", 4 * 1024 * 1024, prefix=prefix + b"<p>Text</p>"),
            "cpu",
        ),
        HostileDocument(
            "html-many-attributes",
            "attributes.html",
            HTML,
            _fill(b" a=b", NEAR_UPLOAD_LIMIT, prefix=prefix + b"<p") + b">x</p>",
            "memory",
        ),
    ]


def _text_documents() -> list[HostileDocument]:
    return [
        HostileDocument(
            "text-large",
            "large.txt",
            TEXT,
            _fill(b"lorem ipsum dolor sit amet\n", NEAR_UPLOAD_LIMIT),
            "memory",
        ),
        HostileDocument(
            "text-blank-lines", "blank.txt", TEXT, _fill(b"x\n\n\n\n", NEAR_UPLOAD_LIMIT), "cpu"
        ),
    ]


_BUILDERS: tuple[Callable[[], HostileDocument | list[HostileDocument]], ...] = (
    cpu_bomb_pdf,
    _pdf_shared_form,
    _pdf_many_operators,
    _pdf_shared_cmap,
    _pdf_flate_bomb,
    _pdf_nested_forms,
    _pdf_deep_outline,
    _pdf_deep_array,
    _docx_empty_paragraphs,
    _docx_understated,
    _docx_many_entries,
    _docx_many_parts,
    _docx_nested_tables,
    _docx_many_short_paragraphs,
    _docx_wide_row,
    _docx_deep_xml,
    _markdown_documents,
    _html_documents,
    _text_documents,
)


@functools.cache
def hostile_documents() -> tuple[HostileDocument, ...]:
    """Every hostile document, built once per process (a second or two of CPU, which
    every test process would otherwise pay at collection and again in each test file)."""
    documents: list[HostileDocument] = []
    for build in _BUILDERS:
        built = build()
        documents.extend(built if isinstance(built, list) else [built])
    return tuple(documents)


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m tests.support.hostile_files OUTDIR", file=sys.stderr)
        return 2
    outdir = Path(argv[0])
    outdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    documents = hostile_documents()
    for document in documents:
        (outdir / document.filename).write_bytes(document.data)
        print(f"{document.kind:9} {len(document.data):>10,} B  {document.filename}")
    print(f"{len(documents)} documents in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
