"""HTML: the main content (``<main>`` or ``role=main`` when marked, else the body) as
paragraphs under its headings; navigation, scripts, forms and hidden parts left out.

The page is read as a stream of tags and text (the standard library's parser) and never
built into a tree: a tree of 19.9 MiB of nested ``<div>`` took 2.9 GiB. Elements and
attributes are counted, and nesting measured, as they arrive. The stream is shaped as
BeautifulSoup's html.parser builder shaped its tree, so pages read as they always have: an
end tag closes the elements opened since its start tag, an unmatched end tag is ignored,
void elements close at once."""

from __future__ import annotations

import html.parser
import re
from collections.abc import Sequence
from typing import Final

from cybergine.knowledge.extract.document import (
    DocumentType,
    ExtractedDocument,
    Limits,
    Section,
)
from cybergine.knowledge.extract.errors import (
    Budget,
    CorruptDocument,
    DocumentTooLarge,
    too_much_work,
)
from cybergine.knowledge.extract.sections import Sections, clean_line, title_of

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
_VOID: Final = frozenset(
    {
        "area", "base", "br", "col", "embed", "hr", "img", "input", "keygen", "link",
        "menuitem", "meta", "param", "source", "track", "wbr", "basefont", "bgsound",
        "command", "frame", "image", "isindex", "nextid", "spacer",
    }
)  # fmt: skip
# Strings inside these are code or annotations, not text of the element around them.
_NOT_TEXT: Final = frozenset({"script", "style", "template"})
# Elements that may start a part the walkers read, or whose text is the page's title.
_ROOTS: Final = frozenset({"body", "main"})
_FIRST_TEXTS: Final = frozenset({"title", "h1"})
_NO_ATTRIBUTES: Final[dict[str, str | None]] = {}
_ANNOTATION: Final = frozenset({"rt", "rp"})
# Past this length a start tag's attributes are counted before the standard parser
# builds their list (one 20 MB tag of "a=b" pairs would be five million of them).
_LONG_TAG: Final = 64 * 1024
# What the standard parser takes for a tag name and for one attribute (html.parser's
# tagfind_tolerant and attrfind_tolerant), to count attributes without its regex.
_TAG_NAME: Final = re.compile(r"([a-zA-Z][^\t\n\r\f />\x00]*)(?:\s|/(?!>))*")
_ATTRIBUTE: Final = re.compile(
    r"((?<=[\'\"\s/])[^\s/>][^\s/=>]*)(\s*=+\s*(\'[^\']*\'|\"[^\"]*\"|(?![\'\"])[^>\s]*))?(?:\s|/(?!>))*"
)
# What the standard parser holds back after reading the whole page: an unterminated tag,
# comment or declaration. Closing the parser handles it piece by piece, rescanning the
# rest each time (quadratic: 2 MB of "<!" took 27 s), so a long one is refused.
_MAX_UNTERMINATED: Final = 64 * 1024

Attributes = Sequence[tuple[str, str | None]]


class _HtmlText:
    def __init__(self, sections: Sections) -> None:
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


class _Capture:
    """The text of one element's subtree, as BeautifulSoup's ``get_text`` gave it: a
    heading's or a ``<pre>``'s strings, or a table row's cells (its direct ``td`` and
    ``th`` children)."""

    def __init__(self, name: str, depth: int) -> None:
        self.name = name
        self.depth = depth  # of the element itself, in the walker's open elements
        self.strings: list[str] = []
        self.cells: list[list[str]] = []
        self._cell_depth: int | None = None

    def start(self, name: str, depth: int) -> None:
        if self.name == "tr" and depth == self.depth + 1 and name in ("td", "th"):
            self.cells.append([])
            self._cell_depth = depth

    def end(self, depth: int) -> None:
        if depth == self._cell_depth:
            self._cell_depth = None

    def string(self, text: str) -> None:
        if self.name != "tr":
            self.strings.append(text)
        elif self._cell_depth is not None:
            self.cells[-1].append(text)

    def finish(self, out: _HtmlText) -> None:
        if self.name in _HTML_HEADINGS:
            out.end_paragraph()
            out.sections.heading(_HTML_HEADINGS[self.name], " ".join(self.strings))
        elif self.name == "pre":
            out.end_paragraph()
            out.sections.block("".join(self.strings))
        else:
            cells = (clean_line(" ".join(cell)) for cell in self.cells)
            out.line(" | ".join(cell for cell in cells if cell))


class _Walker:
    """The text of one root element's subtree (or of the whole document), under its
    headings: what the walk over BeautifulSoup's tree did, one event at a time."""

    _SKIP, _BLOCK, _LINE, _INLINE = range(4)

    def __init__(self, max_chars: int) -> None:
        self.out = _HtmlText(Sections(max_chars))
        # Past the character limit a walker stops reading; that is an error only if its
        # part turns out to be the content.
        self.refusal: DocumentTooLarge | None = None
        # Per open element of the subtree: what its end does, and whether its children
        # are inside the content (an article or main element).
        self._open: list[tuple[int, bool]] = []
        self._skipping = 0  # open elements of a dropped subtree
        self._capture: _Capture | None = None

    @property
    def depth(self) -> int:
        return len(self._open)

    def start(self, name: str, attrs: dict[str, str | None]) -> None:
        depth = len(self._open)
        in_content = self._open[-1][1] if self._open else False
        if self._skipping or self._capture is not None:
            self._open.append((self._SKIP, in_content))
            if self._capture is not None:
                self._capture.start(name, depth + 1)
            else:
                self._skipping += 1
            return
        if (
            name in _HTML_DROP
            or (name in _HTML_CHROME and not in_content)
            or "hidden" in attrs
            or str(attrs.get("aria-hidden") or "").lower() == "true"
        ):
            self._open.append((self._SKIP, in_content))
            self._skipping += 1
            return
        if name in _HTML_HEADINGS or name in ("pre", "tr"):
            self._open.append((self._SKIP, in_content))
            self._capture = _Capture(name, depth + 1)
            return
        if name == "br":
            self.out.end_line()
        elif name == "hr":
            self.out.end_paragraph()
        elif name in _HTML_BLOCKS:
            self.out.end_paragraph()
            self._open.append((self._BLOCK, in_content or name in _HTML_CONTENT))
            return
        elif name in _HTML_LINES:
            self.out.end_line()
            self._open.append((self._LINE, in_content or name in _HTML_CONTENT))
            return
        self._open.append((self._INLINE, in_content))

    def end(self) -> None:
        kind, _ = self._open.pop()
        depth = len(self._open) + 1
        if self._capture is not None:
            if depth == self._capture.depth:
                capture, self._capture = self._capture, None
                capture.finish(self.out)
            else:
                self._capture.end(depth)
        elif kind == self._SKIP:
            self._skipping -= 1
        elif kind == self._BLOCK:
            self.out.end_paragraph()
        elif kind == self._LINE:
            self.out.end_line()

    def string(self, text: str, *, plain: bool) -> None:
        if self._capture is not None:
            if plain:
                self._capture.string(text)
        elif not self._skipping:
            self.out.text(text)

    def finish(self) -> list[Section]:
        while self._open:
            self.end()
        self.out.end_paragraph()
        return self.out.sections.finish()


class _FirstText:
    """The text of the first element of one name anywhere in the page (its title, its
    first level-1 heading), as ``get_text(" ")`` gave it."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.depth: int | None = None
        self.strings: list[str] | None = None

    def start(self, name: str, depth: int) -> None:
        if name == self.name and self.strings is None:
            self.depth, self.strings = depth, []

    def end(self, depth: int) -> None:
        if depth == self.depth:
            self.depth = None

    def string(self, text: str) -> None:
        if self.depth is not None and self.strings is not None:
            self.strings.append(text)

    @property
    def text(self) -> str | None:
        return title_of(" ".join(self.strings)) if self.strings is not None else None


class _Page(html.parser.HTMLParser):
    """Tags and text in order, shaped into BeautifulSoup's tree without building it, and
    fed to the walkers of the parts that may turn out to be the content: the document,
    its body, its first ``<main>``, its first ``role=main`` element."""

    def __init__(self, limits: Limits) -> None:
        super().__init__(convert_charrefs=True)
        self._limits = limits
        self._nodes = Budget(
            limits.max_nodes, lambda limit: too_much_work("HTML elements", limit, limit="nodes")
        )
        self._open: list[str] = []
        # Open code and ruby-annotation elements: strings inside them are no text to
        # ``get_text``, as BeautifulSoup's string types had it.
        self._not_text = 0
        self._pending: list[str] = []
        self.document: _Walker | None = _Walker(limits.max_chars)
        self.body: _Walker | None = None
        self.main: _Walker | None = None
        self.role_main: _Walker | None = None
        # Walkers still reading, with the depth of their root (0: the whole document).
        self._reading: list[tuple[_Walker, int]] = [(self.document, 0)]
        self.title = _FirstText("title")
        self.first_h1 = _FirstText("h1")

    def parse_starttag(self, i: int) -> int:
        rawdata = self.rawdata
        if rawdata.find(">", i, i + _LONG_TAG) < 0:
            # The standard parser's regular expressions take some 800 bytes per attribute
            # of one tag before any handler sees it: count them first, one by one (each
            # match is short, so this costs no more than the attributes allowed).
            tag = _TAG_NAME.match(rawdata, i + 1)
            position = tag.end() if tag else i + 1
            while attribute := _ATTRIBUTE.match(rawdata, position):
                if attribute.end() == position:
                    break
                self._nodes.spend()
                position = attribute.end()
        return super().parse_starttag(i)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._flush()
        self._nodes.spend(1 + len(attrs))
        self._open.append(tag)
        if tag in _NOT_TEXT or tag in _ANNOTATION:
            self._not_text += 1
        depth = len(self._open)
        if depth > self._limits.max_depth:
            raise DocumentTooLarge(
                f"This page nests its elements more than {self._limits.max_depth:,} levels "
                "deep, the limit.",
                limit="depth",
                maximum=self._limits.max_depth,
            )
        attributes = dict(attrs) if attrs else _NO_ATTRIBUTES
        if tag in _ROOTS or attributes:
            self._open_roots(tag, attributes, depth)
        for walker, root in self._reading:
            if depth >= root and walker.refusal is None:
                try:
                    walker.start(tag, attributes)
                except DocumentTooLarge as refusal:
                    walker.refusal = refusal
        if tag in _FIRST_TEXTS:
            self.title.start(tag, depth)
            self.first_h1.start(tag, depth)
        if tag in _VOID:
            self._close(1)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in _VOID:
            self._close(1)

    def handle_endtag(self, tag: str) -> None:
        if tag in _VOID or tag not in self._open:
            return  # BeautifulSoup ignored an end tag with no open element to close
        self._flush()
        self._close(len(self._open) - _last_index(self._open, tag))

    def handle_data(self, data: str) -> None:
        self._pending.append(data)

    def handle_comment(self, data: str) -> None:
        self._flush()  # a comment is no text, but it separates strings

    def handle_decl(self, decl: str) -> None:
        self._flush()

    def handle_pi(self, data: str) -> None:
        self._flush()

    def unknown_decl(self, data: str) -> None:
        self._flush()

    def finish(self) -> None:
        self.close()
        self._flush()
        self._close(len(self._open))

    def _open_roots(self, tag: str, attributes: dict[str, str | None], depth: int) -> None:
        if tag == "body" and self.body is None:
            self.body = _Walker(self._limits.max_chars)
            self._reading.append((self.body, depth))
            self._stop(self.document)  # with a body, the rest of the page is not content
            self.document = None
        if tag == "main" and self.main is None:
            self.main = _Walker(self._limits.max_chars)
            self._reading.append((self.main, depth))
        if attributes.get("role") == "main" and self.role_main is None:
            self.role_main = _Walker(self._limits.max_chars)
            self._reading.append((self.role_main, depth))

    def _stop(self, walker: _Walker | None) -> None:
        self._reading = [(other, root) for other, root in self._reading if other is not walker]

    def _close(self, count: int) -> None:
        for _ in range(count):
            depth = len(self._open)
            for walker, root in self._reading:
                if depth >= root and walker.refusal is None:
                    try:
                        walker.end()
                    except DocumentTooLarge as refusal:
                        walker.refusal = refusal
            if any(root == depth for _, root in self._reading):
                self._reading = [(w, root) for w, root in self._reading if root != depth]
            tag = self._open.pop()
            if tag in _FIRST_TEXTS:
                self.title.end(depth)
                self.first_h1.end(depth)
            if tag in _NOT_TEXT or tag in _ANNOTATION:
                self._not_text -= 1

    def _flush(self) -> None:
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending = []
        plain = not self._not_text
        for walker, _ in self._reading:
            if walker.refusal is None:
                try:
                    walker.string(text, plain=plain)
                except DocumentTooLarge as refusal:
                    walker.refusal = refusal
        if plain:
            self.title.string(text)
            self.first_h1.string(text)


def _last_index(names: list[str], name: str) -> int:
    for index in range(len(names) - 1, -1, -1):
        if names[index] == name:
            return index
    raise ValueError(name)


def extract_html(text: str, limits: Limits) -> ExtractedDocument:
    page = _Page(limits)
    page.feed(text)
    if len(page.rawdata) > _MAX_UNTERMINATED and not page.cdata_elem:
        raise CorruptDocument(
            "This page ends inside a tag, comment or declaration that is never closed, "
            "so it could not be read. Save it again and upload the new copy."
        )
    page.finish()
    found: list[Section] = []
    # The main content when marked, else the body (else the whole page).
    for walker in (page.main or page.role_main, page.body or page.document):
        if walker is None:
            continue
        if walker.refusal is not None:
            raise walker.refusal
        found = walker.finish()
        if found:
            break
    title = page.title.text or page.first_h1.text
    return ExtractedDocument(DocumentType.HTML, title, found, None)
