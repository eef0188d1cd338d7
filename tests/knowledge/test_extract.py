"""Text extraction: the type comes from the content, every failure is a clear domain
error, and the text comes out normalised under its headings. Every file is generated
here with the real libraries (python-docx, pypdf) or written byte by byte."""

from __future__ import annotations

import io
import unicodedata
import zipfile
from collections.abc import Callable

import pypdf
import pytest
from docx.document import Document as WordDocument
from docx.enum.style import WD_STYLE_TYPE

from cybergine.errors import CybergineError, InvalidInput
from cybergine.knowledge.extract import (
    CorruptDocument,
    DocumentTooLarge,
    DocumentType,
    EmptyDocument,
    EncryptedDocument,
    ExtractedDocument,
    Limits,
    Section,
    UnsupportedDocument,
    extract,
    sniff,
)
from tests.support.documents import (
    HTML,
    PNG,
    blank_pdf,
    claim_size,
    make_docx,
    make_pdf,
    rewrite_pdf,
    rezip,
    zip_of,
)

# --- Sniffing -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "filename", "declared_type", "expected"),
    [
        (make_pdf(["Hello"]), "notes.txt", "text/plain", DocumentType.PDF),
        (make_pdf(["Hello"]), "report.docx", "application/msword", DocumentType.PDF),
        (make_docx(), "scan.pdf", "application/pdf", DocumentType.DOCX),
        (make_docx(), None, None, DocumentType.DOCX),
        (HTML, "readme.md", "text/markdown", DocumentType.HTML),
        (b"<div><p>A fragment</p>\n<p>of HTML</p></div>", "x.txt", None, DocumentType.HTML),
        (b"# Returns\n\nWithin 30 days.", "returns.txt", "text/plain", DocumentType.MARKDOWN),
        (b"Returns\n=======\n\nWithin 30 days.", None, None, DocumentType.MARKDOWN),
        (b"Just some words.", "notes.md", None, DocumentType.MARKDOWN),
        (b"Just some words.", None, "text/markdown; charset=utf-8", DocumentType.MARKDOWN),
        (b"Just some words.", "notes.txt", None, DocumentType.TEXT),
        (b"Just some words.", None, None, DocumentType.TEXT),
        (b"<p align=center><img src=logo.png></p>\n\n# Project\n\nText.\n\nMore.", None, None,
         DocumentType.MARKDOWN),
    ],
)  # fmt: skip
def test_the_type_comes_from_the_content(
    data: bytes, filename: str | None, declared_type: str | None, expected: DocumentType
) -> None:
    assert sniff(data, filename=filename, declared_type=declared_type) is expected
    assert extract(data, filename=filename, declared_type=declared_type).type is expected


@pytest.mark.parametrize(
    ("filename", "declared_type"),
    [("photo.txt", "text/plain"), ("photo.md", "text/markdown"), (None, None)],
)
@pytest.mark.parametrize(
    "data",
    [PNG, bytes(range(256)) * 4, b"\x00\x01\x02\x03" * 100, b"\xff\xd8\xff\xe0\x00\x10JFIF\x00"],
)
def test_binary_never_passes_as_text(
    data: bytes, filename: str | None, declared_type: str | None
) -> None:
    with pytest.raises(UnsupportedDocument):
        sniff(data, filename=filename, declared_type=declared_type)
    with pytest.raises(UnsupportedDocument):
        extract(data, filename=filename, declared_type=declared_type)


def test_a_zip_that_is_not_a_word_document_is_unsupported() -> None:
    archive = zip_of({"notes.txt": b"hello", "word/other.xml": b"<x/>"})
    with pytest.raises(UnsupportedDocument):
        sniff(archive, filename="notes.docx")
    with pytest.raises(UnsupportedDocument):
        extract(archive, filename="notes.docx")


def test_a_macro_enabled_word_document_is_unsupported() -> None:
    data = make_docx()
    types = zipfile.ZipFile(io.BytesIO(data)).read("[Content_Types].xml")
    docm = rezip(
        data,
        {
            "[Content_Types].xml": types.replace(
                b"wordprocessingml.document.main+xml",
                b"application/vnd.ms-word.document.macroEnabled.main+xml",
            )
        },
    )
    with pytest.raises(UnsupportedDocument):
        extract(docm, filename="macros.docx")


def test_a_password_protected_word_document_says_so() -> None:
    # Office wraps an encrypted .docx in an OLE compound file with this stream.
    ole = (
        b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
        + b"\x00" * 504
        + "EncryptedPackage".encode("utf-16-le")
        + b"\x00" * 512
    )
    with pytest.raises(EncryptedDocument, match="Word document is password-protected"):
        extract(ole, filename="contract.docx")


def test_an_old_word_document_is_unsupported() -> None:
    with pytest.raises(UnsupportedDocument):
        extract(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 1024, filename="old.doc")


# --- Errors -------------------------------------------------------------------------------


def test_errors_are_domain_errors_with_stable_slugs() -> None:
    invalid = [UnsupportedDocument, EncryptedDocument, EmptyDocument, CorruptDocument]
    assert all(issubclass(error, InvalidInput) and error.status == 422 for error in invalid)
    slugs = {error.type_slug for error in [*invalid, DocumentTooLarge]}
    assert len(slugs) == 5
    assert "invalid-input" not in slugs
    assert issubclass(DocumentTooLarge, CybergineError)
    assert not issubclass(DocumentTooLarge, InvalidInput)
    assert DocumentTooLarge.status == 413
    assert "PDF, Word (.docx), HTML, Markdown or plain text" in UnsupportedDocument().detail


def test_empty_file() -> None:
    with pytest.raises(EmptyDocument, match="No text could be found"):
        extract(b"", filename="empty.pdf")


@pytest.mark.parametrize(
    "data",
    [b"   \n\n\t  \r\n ", "\ufeff  \u00a0\n".encode(), b"\x00", b"<html><body> </body></html>"],
)
def test_text_without_words_is_empty(data: bytes) -> None:
    with pytest.raises(EmptyDocument):
        extract(data)


def test_a_pdf_without_a_text_layer_is_empty_and_the_message_says_why() -> None:
    with pytest.raises(EmptyDocument, match="scan") as raised:
        extract(blank_pdf(2), filename="scan.pdf")
    assert "OCR" in raised.value.detail


@pytest.mark.parametrize(
    "damage",
    [
        lambda pdf: pdf[: len(pdf) // 2],
        lambda pdf: pdf[:-40],
        lambda pdf: b"%PDF-1.7\n" + b"\x8a\x13 garbage " * 50,
        lambda pdf: pdf.replace(b"/Type /Pages", b"/Type /Nonsense").replace(b"xref", b"xxxx"),
    ],
)
def test_a_damaged_pdf_is_corrupt(damage: Callable[[bytes], bytes]) -> None:
    with pytest.raises(CorruptDocument, match="damaged"):
        extract(damage(make_pdf(["Some text on a page.", "And another page."])))


@pytest.mark.parametrize(
    "damage",
    [
        lambda data: data[: len(data) // 2],
        lambda data: data[:-10],
        lambda data: rezip(data, {"word/document.xml": b"<w:document><unclosed"}),
        lambda data: rezip(data, {"[Content_Types].xml": b"not xml at all"}),
        lambda data: b"PK\x03\x04" + b"\x00" * 200,
    ],
)
def test_a_damaged_word_document_is_corrupt(damage: Callable[[bytes], bytes]) -> None:
    with pytest.raises(CorruptDocument):
        extract(damage(make_docx()), filename="letter.docx")


def test_a_docx_claiming_a_huge_document_is_refused_before_parsing() -> None:
    bomb = claim_size(make_docx(), "word/document.xml", 0xFFFF_FFF0)
    with pytest.raises((DocumentTooLarge, CorruptDocument)):
        extract(bomb)


def test_a_docx_whose_document_unpacks_beyond_the_limit_is_too_large() -> None:
    padding = b"<!-- " + b" " * (2 * 1024 * 1024) + b" -->"
    data = make_docx()
    xml = zipfile.ZipFile(io.BytesIO(data)).read("word/document.xml")
    bomb = rezip(data, {"word/document.xml": xml.replace(b"?>", b"?>" + padding, 1)})
    assert len(bomb) < 100_000  # it compresses to nothing: that is the point
    with pytest.raises(DocumentTooLarge) as raised:
        extract(bomb, limits=Limits(max_chars=10_000))
    assert raised.value.extra["limit"] == "chars"
    assert extract(bomb).sections  # within the default limits it is just a document


def test_the_byte_limit() -> None:
    data = b"word " * 100
    assert extract(data, limits=Limits(max_bytes=len(data))).sections
    with pytest.raises(DocumentTooLarge) as raised:
        extract(data, limits=Limits(max_bytes=len(data) - 1))
    assert raised.value.status == 413
    assert raised.value.extra == {"limit": "bytes", "maximum": len(data) - 1}
    assert "499 bytes" in raised.value.detail


def test_the_page_limit_is_checked_before_extracting() -> None:
    pdf = make_pdf(["One.", "Two.", "Three."])
    assert extract(pdf, limits=Limits(max_pages=3)).page_count == 3
    with pytest.raises(DocumentTooLarge, match="3 pages; the limit is 2 pages") as raised:
        extract(pdf, limits=Limits(max_pages=2))
    assert raised.value.extra == {"limit": "pages", "maximum": 2}


@pytest.mark.parametrize(
    "data",
    [
        b"word " * 50,
        b"# Heading\n\n" + b"word " * 50,
        b"<html><body><p>" + b"word " * 50 + b"</p></body></html>",
    ],
)
def test_the_text_limit(data: bytes) -> None:
    with pytest.raises(DocumentTooLarge, match="more than 100 characters") as raised:
        extract(data, limits=Limits(max_chars=100))
    assert raised.value.extra == {"limit": "chars", "maximum": 100}


def test_the_text_limit_applies_to_word_and_pdf() -> None:
    def build(document: WordDocument) -> None:
        for _ in range(20):
            document.add_paragraph("word " * 20)

    with pytest.raises(DocumentTooLarge):
        extract(make_docx(build), limits=Limits(max_chars=1000))
    with pytest.raises(DocumentTooLarge):
        extract(make_pdf(["word " * 30] * 10), limits=Limits(max_chars=1000))


SECRET = "CUSTOMER-CARD-4111111111111111"


@pytest.mark.parametrize(
    "data",
    [
        PNG + SECRET.encode(),
        make_pdf([SECRET])[:300],
        zip_of({"secret.txt": SECRET.encode()}),
        (SECRET + " ").encode() * 100,
    ],
)
def test_messages_never_echo_the_content(data: bytes) -> None:
    with pytest.raises(CybergineError) as raised:
        extract(data, filename=f"{SECRET}.txt", limits=Limits(max_chars=1000))
    assert SECRET not in str(raised.value)
    assert SECRET not in repr(raised.value.extra)


# --- PDF ----------------------------------------------------------------------------------


def test_pdf_pages_become_sections() -> None:
    pdf = make_pdf(["Shipping takes three days.\nTracking is e-mailed.", "Returns are free."],
                   title="Customer handbook")  # fmt: skip
    document = extract(pdf, filename="handbook.pdf")
    assert document.type is DocumentType.PDF
    assert document.title == "Customer handbook"
    assert document.page_count == 2
    assert document.sections == [
        Section((), "Shipping takes three days.\nTracking is e-mailed."),
        Section((), "Returns are free."),
    ]


def test_pdf_bookmarks_become_headings() -> None:
    def bookmark(writer: pypdf.PdfWriter) -> None:
        writer.add_outline_item(title="Shipping", page_number=0)
        parent = writer.add_outline_item(title="Returns", page_number=1)
        writer.add_outline_item(title="Refunds", page_number=2, parent=parent)

    pdf = rewrite_pdf(make_pdf(["Ship it.", "Send it back.", "Money back.", "Still money."]),
                      bookmark)  # fmt: skip
    assert [section.headings for section in extract(pdf).sections] == [
        ("Shipping",),
        ("Returns",),
        ("Returns", "Refunds"),
        ("Returns", "Refunds"),
    ]


@pytest.mark.parametrize("algorithm", ["RC4-128", "AES-128", "AES-256"])
def test_a_password_protected_pdf_is_refused(algorithm: str) -> None:
    pdf = rewrite_pdf(
        make_pdf(["Confidential prices."]),
        lambda writer: writer.encrypt("secret", "owner", algorithm=algorithm),
    )
    assert pypdf.PdfReader(io.BytesIO(pdf)).is_encrypted
    with pytest.raises(EncryptedDocument, match="password-protected"):
        extract(pdf)


def test_a_pdf_that_opens_with_the_empty_password_is_read() -> None:
    pdf = rewrite_pdf(
        make_pdf(["Printing is restricted, reading is not."]),
        lambda writer: writer.encrypt("", "owner-only", algorithm="AES-256"),
    )
    assert pypdf.PdfReader(io.BytesIO(pdf)).is_encrypted
    assert extract(pdf).text == "Printing is restricted, reading is not."


# --- Word ---------------------------------------------------------------------------------


def test_word_heading_styles_become_the_heading_path() -> None:
    def build(d: WordDocument) -> None:
        d.core_properties.title = "Store policies"
        d.add_heading("Policies", 0)
        d.add_paragraph("Read before ordering.")
        d.add_heading("Shipping", 1)
        d.add_paragraph("We ship   worldwide.")
        d.add_heading("International", 2)
        d.add_paragraph("Customs may apply.")
        table = d.add_table(rows=2, cols=2)
        table.cell(0, 0).text = "Country"
        table.cell(0, 1).text = "Days"
        table.cell(1, 0).text = "France"
        table.cell(1, 1).text = "3"
        question = d.styles.add_style("FAQ Question", WD_STYLE_TYPE.PARAGRAPH)
        question.base_style = d.styles["Heading 2"]
        d.add_paragraph("Can I return?", style="FAQ Question")
        d.add_paragraph("Yes, within 30 days.")

    document = extract(make_docx(build), filename="policies.pdf")
    assert document.type is DocumentType.DOCX
    assert document.title == "Store policies"
    assert document.page_count is None
    assert document.sections == [
        Section(("Policies",), "Read before ordering."),
        Section(("Policies", "Shipping"), "We ship worldwide."),
        Section(
            ("Policies", "Shipping", "International"),
            "Customs may apply.\n\nCountry | Days\nFrance | 3",
        ),
        Section(("Policies", "Shipping", "Can I return?"), "Yes, within 30 days."),
    ]


def test_word_title_falls_back_to_the_first_heading() -> None:
    def build(d: WordDocument) -> None:
        d.add_heading("Returns guide", 1)
        d.add_paragraph("Keep the receipt.")

    assert extract(make_docx(build)).title == "Returns guide"


# --- HTML ---------------------------------------------------------------------------------

PAGE = b"""<!doctype html>
<html><head><title> Help  centre </title><style>p { color: red }</style>
<script>document.write("tracking")</script></head>
<body>
<header><a href="/">Shop</a> <a href="/cart">Cart</a></header>
<nav><ul><li>Home</li><li>Help</li></ul></nav>
<h1>Shipping</h1>
<p>We ship <b>every</b>
   weekday.<script>alert("x")</script></p>
<noscript>Enable JavaScript</noscript>
<template><p>Hidden template</p></template>
<div hidden>Hidden div</div>
<h2>International</h2>
<p>Customs&nbsp;may apply.<br>Ask us first.</p>
<ul><li>Canada</li><li>France</li></ul>
<table><tr><th>Zone</th><th>Days</th></tr><tr><td>EU</td><td>3</td></tr></table>
<h3>Express</h3><p>Next day.</p>
<h2>Returns</h2><p>Thirty days.</p>
<svg><text>Logo</text></svg>
<footer>Copyright</footer>
</body></html>"""


def test_html_headings_drive_the_path_and_scripts_are_dropped() -> None:
    document = extract(PAGE, filename="page.md", declared_type="text/markdown")
    assert document.type is DocumentType.HTML
    assert document.title == "Help centre"
    assert document.sections == [
        Section(("Shipping",), "We ship every weekday."),
        Section(
            ("Shipping", "International"),
            "Customs may apply.\nAsk us first.\n\nCanada\nFrance\n\nZone | Days\nEU | 3",
        ),
        Section(("Shipping", "International", "Express"), "Next day."),
        Section(("Shipping", "Returns"), "Thirty days."),
    ]
    for dropped in ("tracking", "alert", "color", "Enable JavaScript", "Hidden", "Logo",
                    "Copyright", "Cart", "Home"):  # fmt: skip
        assert dropped not in document.text


def test_html_main_content_is_preferred() -> None:
    page = (
        b"<html><body><div>Sidebar promo</div><main><header><h1>FAQ</h1></header>"
        b"<p>Answers.</p></main></body></html>"
    )
    document = extract(page)
    assert document.title == "FAQ"
    assert document.sections == [Section(("FAQ",), "Answers.")]


# --- Markdown -----------------------------------------------------------------------------

MARKDOWN = """---
title: "Shipping policy"
tags: [help]
---

Shipping
========

We ship **fast** with [our partner](https://example.com/partner) and [](https://example.com/empty).
Line two of the paragraph.

## International

- Canada *and* the US
- Europe

1. Pack it
2. Send it

<script>alert("kept as text")</script>

| Zone | Days |
|------|------|
| EU   | 3    |

```
code = "kept"
```

Express
-------

![Truck](truck.png) Next day.
"""


def test_markdown_headings_drive_the_path_and_markup_is_stripped() -> None:
    document = extract(MARKDOWN.encode(), filename="shipping.txt")
    assert document.type is DocumentType.MARKDOWN
    assert document.title == "Shipping policy"
    assert document.sections == [
        Section(
            ("Shipping",),
            "We ship fast with our partner and https://example.com/empty. "
            "Line two of the paragraph.",
        ),
        Section(
            ("Shipping", "International"),
            "- Canada and the US\n- Europe\n\n1. Pack it\n2. Send it\n\n"
            '<script>alert("kept as text")</script>\n\nZone | Days\nEU | 3\n\ncode = "kept"',
        ),
        Section(("Shipping", "Express"), "Truck Next day."),
    ]
    assert "**" not in document.text
    assert "https://example.com/partner" not in document.text


def test_a_heading_with_nothing_under_it_keeps_its_words() -> None:
    document = extract(b"# Guide\n\n## Empty\n\n## Full\n\nText.\n\n## Last")
    assert document.sections == [
        Section(("Guide",), "Empty"),
        Section(("Guide", "Full"), "Text."),
        Section(("Guide",), "Last"),
    ]
    assert extract(b"# Only a title").sections == [Section((), "Only a title")]


# --- Plain text and normalisation ---------------------------------------------------------


def test_plain_text_keeps_markup_as_text() -> None:
    data = b"Hello <script>alert(1)</script> & <b>bye</b>\n\nSecond paragraph."
    document = extract(data, filename="notes.txt")
    assert document.type is DocumentType.TEXT
    assert document.title is None
    assert document.sections == [
        Section((), "Hello <script>alert(1)</script> & <b>bye</b>\n\nSecond paragraph.")
    ]


@pytest.mark.parametrize(
    "data",
    [
        "\ufeffCafé crème — 10 €".encode(),
        "Café crème — 10 €".encode("utf-16"),
        "\ufeffCafé crème — 10 €".encode("utf-16-be"),
        "Café crème — 10 €".encode("utf-32"),
        "Café crème — 10 €".encode("cp1252"),
    ],
)
def test_encodings(data: bytes) -> None:
    assert extract(data).text == "Café crème — 10 €"


def test_text_is_normalised() -> None:
    raw = (
        "Cafe\u0301\x00 \x07 with   spaces\t\r\n\r\n\r\n\r\nnext\rline \u00ad\u200b ok\x1b\n"
        + "A long enough line of ordinary text around the stray control characters. " * 5
    )
    text = extract(raw.encode()).sections[0].text
    assert text.startswith("Café with spaces\n\nnext\nline \u200b ok\nA long enough line")
    assert unicodedata.is_normalized("NFC", text)
    assert not any(unicodedata.category(char) == "Cc" for char in text.replace("\n", ""))


def test_whole_text_includes_headings_as_lines() -> None:
    document = ExtractedDocument(
        DocumentType.MARKDOWN,
        None,
        [
            Section((), "Intro."),
            Section(("A",), "One."),
            Section(("A", "B"), "Two."),
            Section(("A", "B"), "Three."),
            Section(("C",), "Four."),
        ],
        None,
    )
    assert document.text == "Intro.\n\nA\n\nOne.\n\nB\n\nTwo.\n\nThree.\n\nC\n\nFour."
