"""Heading-aware chunks of extracted sections, sized for the embedding model.

Pure and dependency-free: no database, no settings, no tokenizer import. Sizes in
`ChunkingPolicy` are in the embedding model's tokens. The caller passes the model's own
``count_tokens`` when it has one; without it a fast approximation (words x 1.3, rounded
up) stands in.

Guarantees, for any input:
- a chunk never spans sections whose top-level headings differ, and carries the heading
  path it belongs to, written as a context line ("Shipping > International") at its top;
- ``count_tokens(chunk.text) <= policy.max_tokens`` (only a single word too long for a
  chunk on its own, cut down to one character, could break it);
- no chunk is empty, and every word of the input is in at least one chunk;
- the same input gives the same chunks.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from cybergine.knowledge.extract import Section

__all__ = [
    "Chunk",
    "ChunkingPolicy",
    "approximate_token_count",
    "chunk_sections",
    "without_context_line",
]


@dataclass(frozen=True)
class Chunk:
    ordinal: int  # 0, 1, 2... across the whole document
    text: str  # the heading path as a context line (when there is one), then the body
    headings: tuple[str, ...]  # several merged sections share the common part of theirs
    char_start: int  # where the body starts in its (first) section's `Section.text`
    token_count: int  # count_tokens(text), context line included


@dataclass(frozen=True)
class ChunkingPolicy:
    """In the embedding model's tokens. all-MiniLM-L6-v2 reads 256 word pieces at most;
    200 leaves room for the approximation's error and the model's [CLS]/[SEP]."""

    max_tokens: int = 200  # the whole chunk text, context line included
    overlap_tokens: int = 40  # repeated from the previous chunk of the same section
    min_tokens: int = 20  # a section's last chunk brings at least this much new text

    def __post_init__(self) -> None:
        if self.max_tokens < 8:
            raise ValueError("max_tokens must be at least 8")
        if not 0 <= self.overlap_tokens <= self.max_tokens // 2:
            raise ValueError("overlap_tokens must be between 0 and half of max_tokens")
        if not 0 <= self.min_tokens <= self.max_tokens // 2:
            raise ValueError("min_tokens must be between 0 and half of max_tokens")


def approximate_token_count(text: str) -> int:
    """Words x 1.3, rounded up: English averages about 1.3 word pieces per word."""
    return (len(text.split()) * 13 + 9) // 10


def chunk_sections(
    sections: Sequence[Section],
    policy: ChunkingPolicy = ChunkingPolicy(),  # frozen: one shared default is safe
    count_tokens: Callable[[str], int] | None = None,
) -> list[Chunk]:
    """Chunks of ``sections`` in document order.

    A section that fits in one chunk is kept whole, and consecutive whole sections under
    the same top-level heading share a chunk while they fit (FAQ-like pages): the chunk's
    headings are then their common path, and each section's remaining headings lead its
    part as a line. A longer section is split on paragraph boundaries first, then
    sentences and line breaks, then words; its consecutive chunks overlap by about
    ``overlap_tokens`` of whole sentences.

    ``count_tokens`` counts what the model reads for a text. A constant overhead it adds
    to every text ([CLS] and [SEP]) is measured once, as ``count_tokens("")``, so it is
    not charged per sentence."""
    return _Chunker(policy, count_tokens).run(sections)


def without_context_line(text: str, title: str) -> str:
    """A document chunk's own words, without the context line at its top (retrieval wants
    it; a customer reading a quote does not).

    Indexing leads every heading path of a titled document with its title, so each of its
    chunks starts with a context line that starts with the title, or, cut down to fit, with
    the title's first word and an ellipsis at its end. An untitled document's chunk has one
    only under a heading, which the text alone cannot tell from a short first line: a path
    of several headings is taken for one."""
    first, newline, rest = text.partition("\n")
    if not newline:
        return text
    if title:
        if text.startswith(title):
            end = text.find("\n", len(title))
            return text[end + 1 :] if end >= 0 else text
        title_words = title.split()
        if first.endswith(" \u2026") and first.split()[:1] == title_words[:1]:
            return rest
        return text  # indexed under another title: an edit not re-indexed yet
    return rest if " > " in first else text


# --- Internals ------------------------------------------------------------------------------

_PARAGRAPH_BREAK = re.compile(r"\n[^\S\n]*\n\s*")
_SENTENCE_BREAK = re.compile(
    # The group that matches is the whitespace between two units: after . ! ? (and one
    # closing quote or bracket) before what looks like a sentence start; after a CJK full
    # stop; at a line break. The leading lookahead lets the engine skip ahead cheaply.
    r"(?=[.!?\n\u3002\uff01\uff1f])"
    r"(?:[.!?][\"'\u201d\u2019)\]]?(\s+)(?=[\"'\u201c\u2018(\[]?(?:[A-Z0-9]|[^\x00-\x7f]))"
    r"|[\u3002\uff01\uff1f](\s*)(?=\S)"
    r"|(\n\s*))"
)
_WORD = re.compile(r"\S+")
# A text longer than this many characters per token cannot fit a real tokenizer's
# budget (word pieces are short), so it is not worth counting whole.
_MAX_CHARS_PER_TOKEN = 32


class _Measure:
    """Token arithmetic in additive "weights": words for the approximation (exact), the
    counter's tokens minus its fixed overhead otherwise (close: a tokenizer splits on
    whitespace first)."""

    def __init__(self, count_tokens: Callable[[str], int] | None) -> None:
        self.approximate = count_tokens is None
        self.count: Callable[[str], int] = count_tokens or approximate_token_count
        self.overhead = 0 if count_tokens is None else max(count_tokens(""), 0)

    def weight(self, text: str) -> int:
        if self.approximate:
            return len(text.split())
        return max(self.count(text) - self.overhead, 1)

    def to_weight(self, tokens: int) -> int:
        return (tokens * 10) // 13 if self.approximate else tokens

    def capacity(self, tokens: int) -> int:
        """The most weight a whole chunk text may have to count at most ``tokens``."""
        return self.to_weight(tokens) - self.overhead


@dataclass
class _Units:
    """A section's body cut into spans of its text: sentences, or pieces of a sentence
    too long for a chunk. A chunk is the slice from one unit's start to a later unit's
    end, so the original spacing and paragraph breaks survive."""

    starts: list[int]
    ends: list[int]
    weights: list[int]
    paragraph_ends: list[bool]


class _Chunker:
    def __init__(self, policy: ChunkingPolicy, count_tokens: Callable[[str], int] | None):
        self.policy = policy
        self.measure = _Measure(count_tokens)
        self.capacity = self.measure.capacity(policy.max_tokens)
        self.overlap = self.measure.to_weight(policy.overlap_tokens)
        # Rounded up, unlike the budgets: the tail must reach min_tokens, not just near it.
        self.minimum = (
            -(-policy.min_tokens * 10 // 13) if count_tokens is None else policy.min_tokens
        )
        self.context_cap = self.measure.to_weight(policy.max_tokens // 4)
        self.chunks: list[Chunk] = []
        self._contexts: dict[tuple[str, ...], tuple[str, int]] = {}
        # Whole sections waiting to share one chunk: (section, body start, body end).
        self._group: list[tuple[Section, int, int]] = []
        self._group_headings: tuple[str, ...] = ()  # the common path of the group
        self._group_text = ""
        self._group_tokens = 0

    def run(self, sections: Sequence[Section]) -> list[Chunk]:
        for section in sections:
            start, end = _trim(section.text, 0, len(section.text))
            if start == end:
                continue
            entry = (section, start, end)
            if self._group and section.headings[:1] == self._group[0][0].headings[:1]:
                shared = _common_prefix([self._group_headings, section.headings])
                if shared == self._group_headings:  # the usual case: just append a part
                    text = f"{self._group_text}\n\n{_part(entry, shared)}"
                else:
                    text = self._render([*self._group, entry], shared)
                tokens = self.measure.count(text)
                if tokens <= self.policy.max_tokens:
                    self._group.append(entry)
                    self._group_headings = shared
                    self._group_text, self._group_tokens = text, tokens
                    continue
            self._flush()
            if (
                self.measure.approximate
                or end - start <= self.policy.max_tokens * _MAX_CHARS_PER_TOKEN
            ):
                text = self._render([entry], section.headings)
                tokens = self.measure.count(text)
                if tokens <= self.policy.max_tokens:
                    self._group, self._group_headings = [entry], section.headings
                    self._group_text, self._group_tokens = text, tokens
                    continue
            self._split(section, start, end)
        self._flush()
        return self.chunks

    # -- whole sections

    def _render(self, group: Sequence[tuple[Section, int, int]], shared: tuple[str, ...]) -> str:
        context, _ = self._context(shared)
        body = "\n\n".join(_part(entry, shared) for entry in group)
        return f"{context}\n{body}" if context else body

    def _flush(self) -> None:
        if self._group:
            start = self._group[0][1]
            self._emit(self._group_text, self._group_headings, start, self._group_tokens)
            self._group = []

    def _emit(self, text: str, headings: tuple[str, ...], start: int, tokens: int) -> None:
        self.chunks.append(Chunk(len(self.chunks), text, headings, start, tokens))

    def _context(self, headings: tuple[str, ...]) -> tuple[str, int]:
        """The context line and its weight, cut to a quarter of a chunk: a hostile or
        careless heading must not crowd out the text it heads."""
        cached = self._contexts.get(headings)
        if cached is not None:
            return cached
        line = " > ".join(headings)
        weight = self.measure.weight(line) if line else 0
        if weight > self.context_cap:
            words = line.split()
            low, high = 0, len(words)  # the most words that fit, by bisection
            while low < high:
                middle = (low + high + 1) // 2
                if self.measure.weight(" ".join(words[:middle]) + " \u2026") <= self.context_cap:
                    low = middle
                else:
                    high = middle - 1
            line = " ".join(words[:low]) + " \u2026" if low else ""
            weight = self.measure.weight(line) if line else 0
        self._contexts[headings] = (line, weight)
        return line, weight

    # -- long sections

    def _split(self, section: Section, start: int, end: int) -> None:
        text = section.text
        context, context_weight = self._context(section.headings)
        budget = max(self.capacity - context_weight, 1)
        units = self._units(text, start, end, budget)
        weights = units.weights
        count = len(weights)
        if not count:
            return
        prefix = [0]
        for weight in weights:
            prefix.append(prefix[-1] + weight)

        first = 0  # the first unit no earlier chunk holds
        i = 0
        while True:
            j = i
            while j + 1 < count and prefix[j + 2] - prefix[i] <= budget:
                j += 1
            if j < count - 1:
                j = self._paragraph_end(i, j, first, prefix, units.paragraph_ends, budget)
                j = self._balance_tail(i, j, first, prefix, weights, budget)
            while True:
                body = text[units.starts[i] : units.ends[j]]
                chunk_text = f"{context}\n{body}" if context else body
                tokens = self.measure.count(chunk_text)
                # Weights only approximate a real tokenizer: trust the count, shedding
                # overlap before new text.
                if tokens <= self.policy.max_tokens or (i >= first and j <= max(first, i)):
                    break
                if i < first:
                    i += 1
                else:
                    j -= 1
            self._emit(chunk_text, section.headings, units.starts[i], tokens)
            if j >= count - 1:
                return
            first = j + 1
            i = self._overlap_start(i, j, prefix, weights, budget)

    def _paragraph_end(
        self, i: int, j: int, first: int, prefix: list[int], ends: list[bool], budget: int
    ) -> int:
        """End at the last paragraph end in the chunk, if that still fills half of it."""
        for m in range(j, max(i, first) - 1, -1):
            if prefix[m + 1] - prefix[i] < budget // 2:
                break
            if ends[m]:
                return m
        return j

    def _balance_tail(
        self, i: int, j: int, first: int, prefix: list[int], weights: list[int], budget: int
    ) -> int:
        """When what is left after unit ``j`` is a tiny piece that cannot join this chunk,
        end this chunk earlier so the last one brings at least ``min_tokens`` of new text."""
        total = prefix[-1]
        if total - prefix[j + 1] >= self.minimum:
            return j
        moved = j
        while moved > first and total - prefix[moved + 1] < self.minimum:
            moved -= 1
        if moved == j or total - prefix[moved + 1] < self.minimum:
            return j
        start = self._overlap_start(i, moved, prefix, weights, budget)
        return moved if total - prefix[start] <= budget else j

    def _overlap_start(
        self, i: int, j: int, prefix: list[int], weights: list[int], budget: int
    ) -> int:
        """The first unit of the chunk after the one ending at ``j``: whole units from the
        end of this one, about ``overlap_tokens`` of them, leaving room for new text."""
        k = j + 1
        while k - 1 > i and prefix[j + 1] - prefix[k - 1] <= self.overlap:
            k -= 1
        # A last sentence a little over the overlap is still better repeated than not.
        if k == j + 1 and j > i and weights[j] <= min(2 * self.overlap, budget // 2):
            k = j
        if j + 1 < len(weights):
            while k <= j and prefix[j + 2] - prefix[k] > budget:
                k += 1
        return k

    def _units(self, text: str, start: int, end: int, budget: int) -> _Units:
        units = _Units([], [], [], [])
        piece = max(budget // 4, 1)
        for paragraph_start, paragraph_end in _paragraphs(text, start, end):
            before = len(units.starts)
            position = paragraph_start
            for match in _SENTENCE_BREAK.finditer(text, paragraph_start, paragraph_end):
                gap_start, gap_end = match.span(match.lastindex or 0)
                self._add(units, text, position, gap_start, budget, piece)
                position = gap_end
            self._add(units, text, position, paragraph_end, budget, piece)
            if len(units.starts) > before:
                units.paragraph_ends[-1] = True
        return units

    def _add(self, units: _Units, text: str, start: int, end: int, budget: int, piece: int) -> None:
        start, end = _trim(text, start, end)
        if start == end:
            return
        weight = self.measure.weight(text[start:end])
        if weight <= budget:
            pieces = [(start, end, weight)]
        else:
            pieces = self._words(text, start, end, piece, budget)
        for piece_start, piece_end, piece_weight in pieces:
            units.starts.append(piece_start)
            units.ends.append(piece_end)
            units.weights.append(piece_weight)
            units.paragraph_ends.append(False)

    def _words(
        self, text: str, start: int, end: int, target: int, budget: int
    ) -> list[tuple[int, int, int]]:
        """A sentence too long for a chunk, as runs of words of about ``target`` weight:
        small enough to overlap and to pack well."""
        pieces: list[tuple[int, int, int]] = []
        run_start = run_end = run_weight = 0
        for match in _WORD.finditer(text, start, end):
            word_start, word_end = match.span()
            weight = 1 if self.measure.approximate else self.measure.weight(match.group())
            if weight > budget:
                if run_weight:
                    pieces.append((run_start, run_end, run_weight))
                    run_weight = 0
                pieces.extend(self._characters(text, word_start, word_end, weight, target, budget))
                continue
            if run_weight and run_weight + weight > target:
                pieces.append((run_start, run_end, run_weight))
                run_weight = 0
            if not run_weight:
                run_start = word_start
            run_end = word_end
            run_weight += weight
        if run_weight:
            pieces.append((run_start, run_end, run_weight))
        return pieces

    def _characters(
        self, text: str, start: int, end: int, weight: int, target: int, budget: int
    ) -> list[tuple[int, int, int]]:
        """The last resort, for one "word" longer than a chunk (a pasted blob, a run of
        CJK text under a real tokenizer): fixed runs of characters."""
        step = max((end - start) * target // max(weight, 1), 1)
        while True:
            bounds = [(s, min(s + step, end)) for s in range(start, end, step)]
            pieces = [(s, e, self.measure.weight(text[s:e])) for s, e in bounds]
            if step == 1 or max(w for _, _, w in pieces) <= budget:
                return pieces
            step = max(step // 2, 1)


def _part(entry: tuple[Section, int, int], shared: tuple[str, ...]) -> str:
    """A whole section inside a chunk headed by ``shared``: the rest of its own path
    leads it as a line."""
    section, start, end = entry
    own = section.headings[len(shared) :]
    body = section.text[start:end]
    return " > ".join(own) + "\n" + body if own else body


def _paragraphs(text: str, start: int, end: int) -> list[tuple[int, int]]:
    spans: list[tuple[int, int]] = []
    position = start
    for match in _PARAGRAPH_BREAK.finditer(text, start, end):
        spans.append((position, match.start()))
        position = match.end()
    spans.append((position, end))
    return spans


def _trim(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


def _common_prefix(paths: Sequence[tuple[str, ...]]) -> tuple[str, ...]:
    shortest = min(paths, key=len)
    for depth, heading in enumerate(shortest):
        if any(path[depth] != heading for path in paths):
            return shortest[:depth]
    return shortest
