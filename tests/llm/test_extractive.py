import uuid

from cybergine.knowledge.search import Component, Hit
from cybergine.llm.extractive import answer, best_sentences

FALLBACK = "I'm not sure. Shall I connect you with a person?"


def _hit(
    text: str, *, kind: str = "document", dense: float | None = 0.7, lexical: float = 5.0
) -> Hit:
    return Hit(
        chunk_id=uuid.uuid4(),
        item_id=uuid.uuid4(),
        external_id="policy-returns",
        title="Returns policy",
        text=text,
        kind=kind,
        score=0.8,
        lexical=Component(rank=1, score=lexical),
        dense=Component(rank=1, score=dense) if dense is not None else None,
    )


def test_a_qa_pair_is_answered_with_its_answer_and_cited() -> None:
    result = answer(
        "can I return shoes?", [_hit("Yes, within 30 days.", kind="qa")], fallback_message=FALLBACK
    )
    assert result.grounded
    assert result.text == "Yes, within 30 days.\n\nSource: Returns policy"
    assert result.citations[0].external_id == "policy-returns"


def test_a_document_is_answered_with_its_most_relevant_sentences() -> None:
    passage = (
        "Returns policy > Refunds\n"
        "We love our customers. Refunds reach your card within five working days. "
        "Our shop in Lyon opens at nine."
    )
    result = answer(
        "how long until my refund arrives on my card?", [_hit(passage)], fallback_message=FALLBACK
    )
    assert "Refunds reach your card within five working days." in result.text
    assert "Returns policy > Refunds" not in result.text


def test_weak_matches_fall_back_and_cite_nothing() -> None:
    result = answer(
        "what is the meaning of life?",
        [_hit("Refunds take five days.", dense=0.2)],
        fallback_message=FALLBACK,
    )
    assert not result.grounded
    assert result.text == FALLBACK
    assert result.citations == ()


def test_lexical_only_search_uses_the_bm25_threshold() -> None:
    assert answer(
        "refund",
        [_hit("Refunds take five days.", dense=None, lexical=6.0)],
        fallback_message=FALLBACK,
    ).grounded
    assert not answer(
        "refund",
        [_hit("Refunds take five days.", dense=None, lexical=0.5)],
        fallback_message=FALLBACK,
    ).grounded


def test_no_hits_fall_back() -> None:
    assert answer("anything", [], fallback_message=FALLBACK).text == FALLBACK


def test_long_passages_are_trimmed() -> None:
    passage = " ".join(f"Sentence number {n} about refunds." for n in range(200))
    assert len(best_sentences(passage, "refunds")) <= 700
