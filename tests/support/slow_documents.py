"""A legitimate document that takes seconds to read whatever the parser: 300 pages of
real text (1.3 million characters, within every limit), each glyph shown by its own
text operator. For tests of what happens while an extraction runs or when it is killed."""

from __future__ import annotations

from tests.support.hostile_files import PDF, HostileDocument, pages_pdf, stream_object

_LINE = b"The quick brown fox jumps over the lazy dog and keeps running far away "


def long_pdf(*, pages: int = 300, lines: int = 60) -> HostileDocument:
    content = (
        b"BT /F1 10 Tf 40 760 Td 12 TL "
        + b"".join(b"(%d %s) '\n" % (n, _LINE) for n in range(lines))
        + b"ET"
    )
    # One stream per page: nothing shared for a parser to recognise and skip.
    streams = [stream_object(content) for _ in range(pages)]
    data = pages_pdf(list(range(4, 4 + pages)), streams)
    return HostileDocument("pdf-long-text", "long.pdf", PDF, data, "cpu")
