"""Word (.docx): paragraphs under their heading styles, tables one line per row.

A .docx is a zip, and its directory's sizes cannot be trusted. So before python-docx
sees anything, every XML part is inflated here piece by piece with a running count of the
bytes that come out, and its elements are counted (and their nesting measured) by a
streaming parse that keeps no tree. python-docx then reads a copy of the package made
of exactly those checked bytes, with the binary parts (pictures, fonts, embedded files:
no text for us) left empty, so it never inflates anything itself."""

from __future__ import annotations

import io
import re
import zipfile
from typing import Final

import docx
from docx.table import Table
from docx.text.paragraph import Paragraph
from lxml import etree  # type: ignore[import-untyped]  # no stubs; python-docx brings lxml

from cybergine.knowledge.extract.document import DocumentType, ExtractedDocument, Limits
from cybergine.knowledge.extract.errors import (
    Budget,
    CorruptDocument,
    DocumentTooLarge,
    UnsupportedDocument,
    megabytes,
    too_much_work,
)
from cybergine.knowledge.extract.sections import Sections, clean_line, title_of
from cybergine.knowledge.extract.zips import open_archive, read_member, unpacked_budget

_XML_SUFFIXES: Final = (".xml", ".rels")
_W: Final = "{http://schemas.openxmlformats.org/wordprocessingml/2006/main}"
_BLOCKS: Final = frozenset({f"{_W}p", f"{_W}tc"})
# Word's XML spends many bytes of markup per character of text; 16 leaves room for
# heavily formatted documents while still bounding what lxml is asked to parse.
_XML_BYTES_PER_CHAR: Final = 16
_MIN_PART_CAP: Final = 1024 * 1024
_DOCX_UNSUPPORTED_MAIN: Final = (b"macroEnabled.main+xml", b"template.main+xml")
_HEADING_STYLE = re.compile(r"heading\s*([1-9])", re.IGNORECASE)
_MAX_TABLE_NESTING: Final = 3


def _checked_package(data: bytes, limits: Limits) -> bytes:
    """A copy of the package holding only bytes counted on the way out: XML parts within
    the unpacked-bytes and element budgets, binary parts empty. Stored, not deflated, so
    reading it again costs no inflating and cannot differ from what was counted."""
    unpacked = unpacked_budget(limits.max_unpacked_bytes)
    elements = Budget(
        limits.max_xml_elements,
        lambda limit: too_much_work("Word elements", limit, limit="xml_elements"),
    )
    blocks = Budget(
        limits.max_word_paragraphs,
        lambda limit: too_much_work("paragraphs and table cells", limit, limit="paragraphs"),
    )
    out = io.BytesIO()
    written: set[str] = set()
    with (
        open_archive(data, max_entries=limits.max_zip_entries) as archive,
        zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as copy,
    ):
        for info in archive.infolist():
            name = info.filename
            if info.is_dir() or name in written:
                continue
            written.add(name)
            if not name.lower().endswith(_XML_SUFFIXES):
                copy.writestr(name, b"")
                continue
            part = read_member(archive, info, unpacked, _part_budget(limits))
            if name == "[Content_Types].xml" and any(
                kind in part for kind in _DOCX_UNSUPPORTED_MAIN
            ):
                raise UnsupportedDocument()  # .docm and .dotx: python-docx refuses them
            _count_elements(part, elements, blocks, limits.max_depth)
            copy.writestr(name, part)
    return out.getvalue()


def _part_budget(limits: Limits) -> Budget:
    def refusal(cap: int) -> DocumentTooLarge:
        return DocumentTooLarge(
            f"This Word document unpacks to more than {megabytes(cap)}: more than the "
            f"limit of {limits.max_chars:,} characters of text could need.",
            limit="chars",
            maximum=limits.max_chars,
        )

    return Budget(max(limits.max_chars * _XML_BYTES_PER_CHAR, _MIN_PART_CAP), refusal)


def _count_elements(part: bytes, elements: Budget, blocks: Budget, max_depth: int) -> None:
    """Counts the part's elements, and among them paragraphs and table cells (python-docx
    takes some 17 µs to walk each), and measures their nesting, without building a tree.
    A part that is not well-formed XML is left for python-docx to judge: it may be a part
    python-docx never parses."""
    depth = 0
    events = etree.iterparse(
        io.BytesIO(part),
        events=("start", "end"),
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        huge_tree=False,
    )
    try:
        for event, element in events:
            if event == "start":
                elements.spend()
                if element.tag in _BLOCKS:
                    blocks.spend()
                depth += 1
                if depth > max_depth:
                    raise DocumentTooLarge(
                        f"This Word document nests its contents more than {max_depth:,} "
                        "levels deep, the limit.",
                        limit="depth",
                        maximum=max_depth,
                    )
            else:
                depth -= 1
                # Keep no tree: drop each element once read, with the siblings before it.
                element.clear()
                parent = element.getparent()
                if parent is not None:
                    while element.getprevious() is not None:
                        del parent[0]
    except etree.XMLSyntaxError:
        return


def extract_docx(data: bytes, limits: Limits) -> ExtractedDocument:
    try:
        package = _checked_package(data, limits)
    except (DocumentTooLarge, UnsupportedDocument):
        raise
    except Exception as exc:  # a damaged zip, a member that fails its CRC check
        raise CorruptDocument() from exc
    document = docx.Document(io.BytesIO(package))
    sections = Sections(limits.max_chars)
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
                    first_heading = title_of(block.text)
        else:
            sections.block("\n".join(_docx_table_lines(block, 0)))
    title = title_of(document.core_properties.title) or first_heading
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
        seen: set[int] = set()  # a set: a row of 20,000 cells made a list take 7 s
        cells: list[str] = []
        for cell in row.cells:
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            parts: list[str] = []
            for inner in cell.iter_inner_content():
                if isinstance(inner, Paragraph):
                    parts.append(inner.text)
                elif depth < _MAX_TABLE_NESTING:
                    parts.extend(_docx_table_lines(inner, depth + 1))
            text = clean_line(" ".join(parts))
            if text:
                cells.append(text)
        if cells:
            lines.append(" | ".join(cells))
    return lines
