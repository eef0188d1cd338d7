"""Markdown (CommonMark with tables and strikethrough): headings become the heading path,
lists and tables stay one block each.

markdown-it builds a token for every list item, quote and emphasis before anything is
returned (4 MiB of empty list items made 725 MiB of tokens), so tokens are counted while
they are made: block tokens as they are appended, inline tokens by a rule that runs
before every other inline rule."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any, Final, SupportsIndex

from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock
from markdown_it.rules_core import StateCore
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token

from cybergine.knowledge.extract.document import DocumentType, ExtractedDocument, Limits
from cybergine.knowledge.extract.errors import (
    Budget,
    DocumentTooLarge,
    check_markup_size,
    too_much_work,
)
from cybergine.knowledge.extract.sections import Sections, clean_line, title_of

_FRONT_MATTER = re.compile(r"\A---[ \t]*\n(.*?)\n(?:---|\.\.\.)[ \t]*(?:\n|\Z)", re.DOTALL)
_FRONT_MATTER_KEY = re.compile(r"[A-Za-z0-9_-]+[ \t]*:")
_FRONT_MATTER_TITLE = re.compile(r"^title[ \t]*:[ \t]*(.+?)[ \t]*$", re.MULTILINE)


_COUNT: Final = "cybergine_inline_count"
# A "[" costs the inline parser a look-ahead for the rest of a link: some twenty times an
# ordinary stop.
_LINK_STEPS: Final = 20


class _CountedTokens(list[Token]):
    """The block token list, counting each token as the block parser appends it."""

    def __init__(self, budget: Budget) -> None:
        super().__init__()
        self._budget = budget

    def append(self, token: Token) -> None:
        self._budget.spend()
        super().append(token)

    def insert(self, index: SupportsIndex, token: Token) -> None:
        self._budget.spend()
        super().insert(index, token)


class _InlineCount:
    """The parser's work so far: the inline tokens it has made, across inline blocks
    (memory), and the positions it has stopped at to try its rules (time: markdown-it
    stops at every special character, and at a "[" it looks ahead for a whole link, so
    a megabyte of "![" took 17 s while making one token)."""

    def __init__(self, tokens: Budget, steps: Budget) -> None:
        self.tokens = tokens
        self.steps = steps
        self.state: StateInline | None = None
        self.seen = 0


def _count_inline(state: StateInline, silent: bool) -> bool:
    """An inline rule that consumes nothing: it runs before every other rule at every
    position the inline parser stops at, and charges the work since its last run."""
    count: _InlineCount = state.env[_COUNT]
    count.steps.spend(_LINK_STEPS if state.src[state.pos] == "[" else 1)
    if state is not count.state:
        count.state, count.seen = state, 0
    made = len(state.tokens) - count.seen
    if made > 0:
        count.seen += made
        count.tokens.spend(made)
    return False


def _count_block(state: StateBlock, start_line: int, end_line: int, silent: bool) -> bool:
    """A block rule that consumes nothing: it runs first wherever a block may start and
    charges a step, twenty for a "[" (a link reference definition to look through)."""
    count: _InlineCount = state.env[_COUNT]
    position = state.bMarks[start_line] + state.tShift[start_line]
    count.steps.spend(_LINK_STEPS if state.src[position : position + 1] == "[" else 1)
    return False


def _markdown_parser() -> MarkdownIt:
    parser = MarkdownIt("commonmark").enable(["table", "strikethrough"])
    parser.block.ruler.before("table", "cybergine_count", _count_block)
    parser.inline.ruler.before("text", "cybergine_count", _count_inline)
    return parser


_PARSER: Final = _markdown_parser()


def _parse(text: str, limits: Limits) -> list[Token]:
    tokens = Budget(
        limits.max_nodes, lambda limit: too_much_work("Markdown elements", limit, limit="nodes")
    )
    steps = Budget(
        limits.max_markdown_steps,
        lambda limit: too_much_work("links and markup", limit, limit="markdown_steps"),
    )
    env: dict[str, Any] = {_COUNT: _InlineCount(tokens, steps)}
    state = StateCore(text, _PARSER, env)
    state.tokens = _CountedTokens(tokens)
    _PARSER.core.process(state)
    return state.tokens


def extract_markdown(text: str, limits: Limits) -> ExtractedDocument:
    check_markup_size(text, limits.max_markup_chars)
    lines = text.count("\n") + 1
    if lines > limits.max_markdown_lines:
        raise DocumentTooLarge(
            f"This Markdown file has {lines:,} lines; the limit is "
            f"{limits.max_markdown_lines:,}. Split it into smaller files and upload them "
            "separately.",
            limit="markdown_lines",
            maximum=limits.max_markdown_lines,
        )
    title: str | None = None
    front = _FRONT_MATTER.match(text[:65536])
    if front and _FRONT_MATTER_KEY.match(front.group(1).lstrip()):
        # YAML front matter is metadata, not text (and would parse as a setext heading).
        found = _FRONT_MATTER_TITLE.search(front.group(1))
        if found:
            title = title_of(found.group(1).strip("\"'"))
        text = text[front.end() :]
    sections = Sections(limits.max_chars)
    first_h1 = _walk_markdown(_parse(text, limits), sections)
    return ExtractedDocument(DocumentType.MARKDOWN, title or first_h1, sections.finish(), None)


def _walk_markdown(tokens: Sequence[Token], sections: Sections) -> str | None:
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
                first_h1 = title_of(heading)
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
                row.append(clean_line(content))
            elif previous == "paragraph_open":
                _markdown_block(content, sections, lines, containers, markers)
        elif kind in ("fence", "code_block", "html_block"):
            # Raw HTML in Markdown is kept as the text it is, never interpreted.
            _markdown_block(token.content, sections, lines, containers, markers)
    if lines:
        sections.block("\n".join(lines))
    return first_h1


def _markdown_block(
    text: str, sections: Sections, lines: list[str], containers: int, markers: list[str]
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
