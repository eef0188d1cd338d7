"""Documents generated for the extraction tests, with the real libraries (python-docx,
pypdf) or byte by byte: PDFs with and without a text layer, Word documents, ZIP
containers rewritten member by member."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable

import docx
import pypdf
from docx.document import Document as WordDocument

from tests.support.hostile_files import build_pdf


def make_pdf(pages: list[str], *, title: str | None = None) -> bytes:
    """A minimal valid PDF: one Helvetica text line per line of each page's text."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids ["
        + b" ".join(b"%d 0 R" % (4 + 2 * i) for i in range(len(pages)))
        + b"] /Count %d >>" % len(pages),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    for index, text in enumerate(pages):
        operations = []
        for number, line in enumerate(text.split("\n")):
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            operations.append(f"BT /F1 12 Tf 72 {720 - 16 * number} Td ({escaped}) Tj ET")
        stream = "\n".join(operations).encode("latin-1")
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
            b"/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>" % (5 + 2 * index)
        )
        objects.append(b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream))
    info = None
    if title is not None:
        objects.append(b"<< /Title (" + title.encode("latin-1") + b") >>")
        info = len(objects)
    return build_pdf(objects, info=info)


def rewrite_pdf(data: bytes, change: Callable[[pypdf.PdfWriter], None]) -> bytes:
    writer = pypdf.PdfWriter(clone_from=pypdf.PdfReader(io.BytesIO(data)))
    change(writer)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def blank_pdf(pages: int = 1) -> bytes:
    writer = pypdf.PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(612, 792)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def make_docx(build: Callable[[WordDocument], None] | None = None) -> bytes:
    document = docx.Document()
    if build is None:
        document.add_paragraph("Opening hours are nine to five.")
    else:
        build(document)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def rezip(data: bytes, replace: dict[str, bytes]) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            target.writestr(info.filename, replace.get(info.filename, source.read(info)))
    return out.getvalue()


def claim_size(data: bytes, name: str, size: int) -> bytes:
    """The archive's directory says ``name`` unpacks to ``size`` bytes (a zip bomb's
    claim), the data unchanged."""
    out = bytearray(data)
    position = out.find(b"PK\x01\x02")
    while position != -1:
        name_length = int.from_bytes(out[position + 28 : position + 30], "little")
        if out[position + 46 : position + 46 + name_length] == name.encode():
            out[position + 24 : position + 28] = size.to_bytes(4, "little")
            return bytes(out)
        position = out.find(b"PK\x01\x02", position + 4)
    raise AssertionError(f"{name} is not in the archive")


def zip_of(members: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return out.getvalue()


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02"
HTML = b"<!DOCTYPE html><html><head><title>Help</title></head><body><p>Hi.</p></body></html>"
