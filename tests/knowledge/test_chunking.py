"""Chunking: heading-aware, within the token budget, overlapping, and lossless."""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from tokenizers import Tokenizer

import cybergine.knowledge
from cybergine.knowledge.chunking import (
    Chunk,
    ChunkingPolicy,
    approximate_token_count,
    chunk_sections,
)
from cybergine.knowledge.extract import Section

TOKENIZER = (
    Path(cybergine.knowledge.__file__).parent
    / "embedding_data"
    / ("all-MiniLM-L6-v2.tokenizer.json")
)


def word_pieces(text: str) -> int:
    """A stand-in for a subword tokenizer: words and punctuation, plus [CLS] and [SEP]."""
    return len(re.findall(r"\w+|[^\w\s]", text)) + 2


@pytest.fixture(scope="module")
def minilm() -> Callable[[str], int]:
    tokenizer = Tokenizer.from_file(str(TOKENIZER))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return lambda text: len(tokenizer.encode(text).ids)


class Words:
    """Unique words (w0, w1, ...), so "every word is in some chunk" means no text lost."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.next = 0

    def word(self) -> str:
        self.next += 1
        return f"w{self.next}"

    def sentence(self, low: int = 4, high: int = 20) -> str:
        words = [self.word() for _ in range(self.rng.randint(low, high))]
        return "S" + " ".join(words) + self.rng.choice([".", "!", "?"])

    def paragraph(self, sentences: int | None = None) -> str:
        count = sentences if sentences is not None else self.rng.randint(1, 8)
        return " ".join(self.sentence() for _ in range(count))

    def section_text(self, paragraphs: int) -> str:
        return "\n\n".join(self.paragraph() for _ in range(paragraphs))


def body(chunk: Chunk) -> str:
    return chunk.text.split("\n", 1)[1] if chunk.headings else chunk.text


def words_of(texts: list[str]) -> set[str]:
    return {word.strip(".!?") for text in texts for word in text.split()}


def assert_lossless(sections: list[Section], chunks: list[Chunk]) -> None:
    expected = words_of([section.text for section in sections])
    assert expected <= words_of([chunk.text for chunk in chunks])


def long_section(words: Words, paragraphs: int = 12) -> Section:
    return Section(("Shipping", "International"), words.section_text(paragraphs))


# --- Sizes --------------------------------------------------------------------------------


def test_chunks_stay_within_the_budget_with_the_default_counter() -> None:
    sections = [long_section(Words(seed)) for seed in range(5)]
    chunks = chunk_sections(sections)
    assert len(chunks) > 10
    for chunk in chunks:
        assert chunk.token_count == approximate_token_count(chunk.text)
        assert chunk.token_count <= 200
    # Greedy packing fills chunks: a long section's chunks are not needlessly small.
    assert sum(chunk.token_count for chunk in chunks) / len(chunks) > 120


@pytest.mark.parametrize("max_tokens", [30, 64, 128, 200])
def test_chunks_stay_within_the_budget_with_a_custom_counter(max_tokens: int) -> None:
    policy = ChunkingPolicy(max_tokens=max_tokens, overlap_tokens=max_tokens // 5,
                            min_tokens=max_tokens // 10)  # fmt: skip
    sections = [long_section(Words(seed)) for seed in range(3)]
    chunks = chunk_sections(sections, policy, count_tokens=word_pieces)
    for chunk in chunks:
        assert chunk.token_count == word_pieces(chunk.text) <= max_tokens
    assert_lossless(sections, chunks)


def test_chunks_fit_the_real_model_tokenizer(minilm: Callable[[str], int]) -> None:
    sections = [
        Section(("Café & crème", "Prix"), "Les croissants coûtent 1,20 € pièce. " * 150),
        long_section(Words(7)),
        Section((), "https://example.com/" + "a1b2c3d4" * 400),  # one "word", many pieces
    ]
    chunks = chunk_sections(sections, ChunkingPolicy(), count_tokens=minilm)
    assert len(chunks) > 10
    for chunk in chunks:
        assert chunk.token_count == minilm(chunk.text) <= 200


def test_a_giant_sentence_is_split_by_words() -> None:
    words = Words(3)
    section = Section(("Terms",), " ".join(words.word() for _ in range(2000)))
    chunks = chunk_sections([section])
    assert len(chunks) > 10
    assert all(chunk.token_count <= 200 for chunk in chunks)
    assert_lossless([section], chunks)
    first, second = body(chunks[0]).split(), body(chunks[1]).split()
    assert set(first) & set(second)  # overlap, even without sentences


def test_a_word_longer_than_a_chunk_is_cut_by_characters() -> None:
    def per_four_characters(text: str) -> int:
        return -(-len(text) // 4)

    blob = "x" * 3000
    chunks = chunk_sections(
        [Section((), f"Before. {blob} After.")], count_tokens=per_four_characters
    )
    assert len(chunks) >= 3000 // (200 * 4)
    assert all(chunk.token_count <= 200 for chunk in chunks)
    assert "".join(chunk.text for chunk in chunks).count("x") >= 3000
    assert chunks[0].text.startswith("Before.")
    assert chunks[-1].text.endswith("After.")


# --- Structure ----------------------------------------------------------------------------


def test_chunks_carry_their_heading_path_as_a_context_line() -> None:
    chunks = chunk_sections([long_section(Words(1)), Section((), "No heading here.")])
    assert chunks[-1] == Chunk(len(chunks) - 1, "No heading here.", (), 0, 4)
    for chunk in chunks[:-1]:
        assert chunk.headings == ("Shipping", "International")
        assert chunk.text.startswith("Shipping > International\n")
        assert body(chunk).strip() == body(chunk)


def test_ordinals_and_char_starts() -> None:
    section = long_section(Words(2))
    chunks = chunk_sections([Section((), "Intro."), section])
    assert [chunk.ordinal for chunk in chunks] == list(range(len(chunks)))
    for chunk in chunks[1:]:
        assert section.text[chunk.char_start :].startswith(body(chunk))


def test_consecutive_chunks_of_a_section_overlap_by_whole_sentences() -> None:
    section = long_section(Words(4), paragraphs=20)
    chunks = chunk_sections([section], ChunkingPolicy(overlap_tokens=40))
    assert len(chunks) > 5
    for previous, chunk in itertools.pairwise(chunks):
        previous_end = previous.char_start + len(body(previous))
        assert chunk.char_start < previous_end  # starts inside the previous chunk
        shared = section.text[chunk.char_start : previous_end]
        assert 0 < approximate_token_count(shared) <= 80
        assert previous.text.endswith(shared)
        # Whole sentences: the overlap begins where a sentence begins.
        assert section.text[chunk.char_start - 1] in " \n"
        assert section.text[chunk.char_start - 2] in ".!?\n"


def test_no_overlap_when_asked_for_none() -> None:
    section = long_section(Words(5))
    chunks = chunk_sections([section], ChunkingPolicy(overlap_tokens=0))
    for previous, chunk in itertools.pairwise(chunks):
        assert chunk.char_start >= previous.char_start + len(body(previous))
    assert_lossless([section], chunks)


def test_long_sections_split_at_paragraph_ends_first() -> None:
    first, second, third = (
        " ".join(f"Sentence {paragraph}{index} has six words." for index in range(7))
        for paragraph in "abc"
    )
    section = Section((), f"{first}\n\n{second}\n\n{third}")
    # Two paragraphs do not fit, but the first and most of the second would.
    policy = ChunkingPolicy(
        max_tokens=approximate_token_count(f"{first} {second}") - 5, overlap_tokens=0
    )
    chunks = chunk_sections([section], policy)
    assert body(chunks[0]) == first
    assert chunks[1].char_start == len(first) + 2


def test_chunks_never_mix_top_level_headings() -> None:
    sections = [
        Section(("Shipping",), "Three days."),
        Section(("Shipping", "Express"), "Next day."),
        Section(("Returns",), "Thirty days."),
        Section(("Returns", "Refunds"), "To the card used."),
    ]
    chunks = chunk_sections(sections)
    assert [(chunk.headings, chunk.text) for chunk in chunks] == [
        (("Shipping",), "Shipping\nThree days.\n\nExpress\nNext day."),
        (("Returns",), "Returns\nThirty days.\n\nRefunds\nTo the card used."),
    ]


def test_small_sections_under_one_heading_share_chunks_while_they_fit() -> None:
    questions = [
        Section(("FAQ", f"Question {number}?"), f"Answer number {number} is short.")
        for number in range(40)
    ]
    chunks = chunk_sections(questions, ChunkingPolicy(max_tokens=60, overlap_tokens=10))
    assert 1 < len(chunks) < 40
    for chunk in chunks:
        assert chunk.headings[:1] == ("FAQ",)
        assert chunk.text.startswith("FAQ")
        assert chunk.token_count <= 60
    assert_lossless(questions, chunks)
    assert "Question 7?\nAnswer number 7 is short." in "\n".join(c.text for c in chunks)


def test_a_huge_heading_does_not_crowd_out_the_text() -> None:
    heading = " ".join(f"h{number}" for number in range(500))
    chunks = chunk_sections([Section((heading,), "The actual answer. " * 100)])
    for chunk in chunks:
        assert chunk.token_count <= 200
        context = chunk.text.split("\n", 1)[0]
        assert approximate_token_count(context) <= 50
        assert context.endswith("\u2026")
        assert chunk.headings == (heading,)


def test_empty_sections_make_no_chunks() -> None:
    assert chunk_sections([]) == []
    assert chunk_sections([Section(("A",), ""), Section((), " \n\n \t")]) == []
    chunks = chunk_sections([Section(("A",), "  "), Section(("B",), "Text.")])
    assert [chunk.text for chunk in chunks] == ["B\nText."]


# --- Tails --------------------------------------------------------------------------------


def test_a_tiny_tail_that_fits_joins_the_previous_chunk() -> None:
    words = Words(8)
    paragraph = words.paragraph(5)
    tail = "Thanks."
    policy = ChunkingPolicy(
        max_tokens=approximate_token_count(f"{paragraph} {tail}") + 2, overlap_tokens=10
    )
    chunks = chunk_sections([Section((), f"{paragraph}\n\n{tail}")], policy)
    assert len(chunks) == 1
    assert chunks[0].text.endswith(tail)


def test_a_tiny_tail_that_cannot_join_takes_text_from_the_previous_chunk() -> None:
    sentences = [f"Sentence {index} has exactly seven words." for index in range(6)]
    text = " ".join([*sentences, "Bye now."])
    # Six sentences fill a chunk exactly, so a naive split leaves "Bye now." alone.
    policy = ChunkingPolicy(max_tokens=approximate_token_count(" ".join(sentences)),
                            overlap_tokens=0, min_tokens=10)  # fmt: skip
    chunks = chunk_sections([Section((), text)], policy)
    assert len(chunks) == 2
    assert all(chunk.token_count >= 10 for chunk in chunks)
    assert chunks[1].text.endswith("Bye now.")
    assert_lossless([Section((), text)], chunks)


# --- Properties ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(25))
def test_random_documents_lose_nothing_and_respect_the_budget(seed: int) -> None:
    rng = random.Random(seed)
    words = Words(seed)
    sections: list[Section] = []
    for _ in range(rng.randint(1, 12)):
        depth = rng.randint(0, 3)
        headings = tuple(rng.choice(["Shipping", "Returns", "FAQ", "Sizes"]) for _ in range(depth))
        shape = rng.random()
        if shape < 0.1:
            text = " ".join(words.word() for _ in range(rng.randint(100, 900)))
        elif shape < 0.2:
            text = "\n".join(words.sentence(1, 4) for _ in range(rng.randint(1, 80)))
        else:
            text = words.section_text(rng.randint(1, 10))
        sections.append(Section(headings, text))
    max_tokens = rng.choice([16, 40, 100, 200, 256])
    policy = ChunkingPolicy(
        max_tokens=max_tokens,
        overlap_tokens=rng.randint(0, max_tokens // 2),
        min_tokens=rng.randint(0, max_tokens // 2),
    )
    counter = rng.choice([None, word_pieces])
    chunks = chunk_sections(sections, policy, count_tokens=counter)
    count = counter or approximate_token_count
    assert chunks
    for ordinal, chunk in enumerate(chunks):
        assert chunk.ordinal == ordinal
        assert body(chunk).strip()
        assert chunk.token_count == count(chunk.text) <= max_tokens
    assert_lossless(sections, chunks)
    assert chunk_sections(sections, policy, count_tokens=counter) == chunks  # deterministic


def test_policy_is_validated() -> None:
    with pytest.raises(ValueError, match="max_tokens"):
        ChunkingPolicy(max_tokens=4)
    with pytest.raises(ValueError, match="overlap_tokens"):
        ChunkingPolicy(max_tokens=100, overlap_tokens=60)
    with pytest.raises(ValueError, match="min_tokens"):
        ChunkingPolicy(min_tokens=-1)
