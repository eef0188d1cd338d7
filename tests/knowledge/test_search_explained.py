"""Search explains itself from its one ranking: each result's lexical and dense
components, their shares of the fused score, and whether it clears the grounding
threshold; the API's ``explain`` says the same."""

from __future__ import annotations

import uuid

import pytest

from cybergine.accounts.service.organisations import create_organisation
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.knowledge import indexing, service
from cybergine.knowledge import search as retrieval
from cybergine.knowledge.providers import embedding_provider
from cybergine.llm import extractive
from cybergine.settings import Settings
from tests.support.factories import make_organisation_with_key
from tests.support.jobs import run_jobs
from tests.support.knowledge import search
from tests.support.server import LiveServer

DOCUMENTS = {
    "Returns": "You can return any unworn item within 30 days of delivery for a refund.",
    "Shipping": "We ship to the EU and the UK. Express delivery arrives the next working day.",
    "Gift cards": "Gift cards never expire and can be used in our shops and online.",
    "Opening hours": "Our shop in Lyon opens at nine and closes at seven, Monday to Saturday.",
}
QUESTION = "how many days do I have to return something?"


def _row(
    item: int, *, lexical: float, dense: float | None, chunk: int | None = None
) -> retrieval.Candidate:
    """A candidate as the search statement returns it."""
    return retrieval.Candidate(
        id=uuid.UUID(int=chunk if chunk is not None else item),
        item_id=uuid.UUID(int=1000 + item),
        chunk_text=f"Doc {item}\nText {item}.",
        lexical=lexical,
        dense=dense,
        kind="document",
        external_id=None,
        title=f"Doc {item}",
        body="",
    )


def _assert_consistent(hits: list[retrieval.Hit], *, dense_search: bool) -> None:
    scores = [hit.score for hit in hits]
    assert scores == sorted(scores, reverse=True)  # the fused order is the result order
    weights = retrieval.DEFAULT_WEIGHTS
    for hit in hits:
        shares = hit.lexical.contribution + (hit.dense.contribution if hit.dense else 0.0)
        assert hit.score == pytest.approx(shares, abs=1e-5)
        if dense_search and hit.dense is not None:
            dense_share = weights.dense * hit.dense.score
            assert hit.dense.contribution == pytest.approx(dense_share, abs=1e-5)
            assert 0 <= hit.lexical.contribution <= weights.lexical + 1e-6
            assert hit.grounded is (hit.dense.score >= retrieval.MIN_SIMILARITY)
        else:
            assert hit.dense is None
            assert 0 <= hit.lexical.contribution <= 1 + 1e-6
            assert hit.grounded is (hit.lexical.score >= retrieval.MIN_BM25)
        assert hit.grounded is extractive.grounded(hit)  # the line the responders apply


def test_fusion_shares_add_up_and_order_the_results() -> None:
    rows = [
        _row(1, lexical=8.0, dense=0.40),  # best on words, under the threshold
        _row(2, lexical=0.0, dense=0.50),
        _row(3, lexical=2.0, dense=0.47),
        _row(4, lexical=4.0, dense=None),  # not embedded with the current model yet
    ]
    hits = retrieval.fuse(rows, k=10, weights=retrieval.DEFAULT_WEIGHTS, use_dense=True)
    assert [hit.title for hit in hits] == ["Doc 4", "Doc 1", "Doc 2", "Doc 3"]
    first, second, third, fourth = hits
    assert first.score == pytest.approx(0.5)  # words alone, scaled to the best (8.0)
    assert first.dense is None
    assert first.lexical.contribution == pytest.approx(0.5)
    assert second.score == pytest.approx(0.9 * 0.40 + 0.1)
    assert second.lexical.rank == 1
    assert second.dense is not None
    assert second.dense.rank == 3
    assert third.lexical.rank is None  # no word in common: no lexical rank
    # The threshold is each hit's own: the one ranked second is under it, the two below
    # it clear it (close on meaning, short on words), and the unembedded one goes by BM25.
    assert [hit.grounded for hit in hits] == [True, False, True, True]
    assert fourth.dense is not None
    assert fourth.dense.rank == 2
    _assert_consistent(hits, dense_search=True)


def test_lexical_only_hits_are_explained_by_their_words() -> None:
    rows = [_row(1, lexical=2.5, dense=None), _row(2, lexical=5.0, dense=None)]
    hits = retrieval.fuse(rows, k=10, weights=retrieval.DEFAULT_WEIGHTS, use_dense=False)
    assert [hit.title for hit in hits] == ["Doc 2", "Doc 1"]
    assert [hit.score for hit in hits] == [1.0, 0.5]
    assert [hit.grounded for hit in hits] == [True, False]  # BM25 3.0 is the line
    _assert_consistent(hits, dense_search=False)


def test_the_best_chunk_of_an_item_is_its_result() -> None:
    rows = [
        _row(1, lexical=1.0, dense=0.30, chunk=11),
        _row(1, lexical=3.0, dense=0.60, chunk=12),
        _row(2, lexical=2.0, dense=0.50, chunk=21),
    ]
    hits = retrieval.fuse(rows, k=10, weights=retrieval.DEFAULT_WEIGHTS, use_dense=True)
    assert [hit.chunk_id for hit in hits] == [uuid.UUID(int=12), uuid.UUID(int=21)]
    _assert_consistent(hits, dense_search=True)


async def _indexed(database: Database, settings: Settings, *, dense: bool) -> uuid.UUID:
    provider = embedding_provider(settings) if dense else None
    async with database.transaction() as session:
        organisation = await create_organisation(session, name="Explained")
        items = [
            await service.create_document(
                TenantScope(session, organisation.id), title=title, body=body
            )
            for title, body in DOCUMENTS.items()
        ]
    for item in items:
        await indexing.index_item(database, item.id, item.version, provider)
    return organisation.id


@pytest.mark.parametrize("dense", [True, False], ids=["hybrid", "lexical"])
async def test_real_searches_are_consistent_with_their_explanation(
    database: Database, settings: Settings, dense: bool
) -> None:
    organisation_id = await _indexed(database, settings, dense=dense)
    provider = embedding_provider(settings) if dense else None
    async with database.transaction() as session:
        scope = TenantScope(session, organisation_id)
        for question in (QUESTION, "express delivery", "gift card expiry", "teapots"):
            hits = await service.search_knowledge(scope, query=question, k=5, provider=provider)
            _assert_consistent(hits, dense_search=dense)
        (best, *_) = await service.search_knowledge(scope, query=QUESTION, k=5, provider=provider)
    assert best.title == "Returns"
    if dense:  # four short documents give BM25 too little to go on for the threshold
        assert best.grounded
    assert best.quote.startswith("You can return")  # the context line is not quoted


async def test_the_api_explains_each_result_and_the_ranking(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    _, key = await make_organisation_with_key(database)
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as api:
        for title, body in DOCUMENTS.items():
            created = api.post("/api/v1/knowledge/documents", json={"title": title, "text": body})
            assert created.status_code == 202, created.text
        await run_jobs(database, settings)
        response = api.post(
            "/api/v1/knowledge/search", json={"query": QUESTION, "k": 4, "explain": True}
        )
        assert response.status_code == 200, response.text
        plain = api.post("/api/v1/knowledge/search", json={"query": QUESTION, "k": 4})
    body = response.json()
    assert body["explain"] == {
        "dense_search": True,
        "weights": {"dense": 0.9, "lexical": 0.1},
        "grounding": {"min_similarity": 0.45, "min_bm25": 3.0},
    }
    results = body["results"]
    assert results[0]["title"] == "Returns"
    assert [r["score"] for r in results] == sorted((r["score"] for r in results), reverse=True)
    for result in results:
        explain = result["explain"]
        shares = explain["lexical"]["contribution"] + explain["dense"]["contribution"]
        assert result["score"] == pytest.approx(shares, abs=1e-5)
        assert explain["grounded"] is (explain["dense"]["score"] >= 0.45)
    assert results[0]["explain"]["grounded"]
    # Without ``explain`` the answer is as it was.
    assert plain.json()["explain"] is None
    assert all(r["explain"] is None for r in plain.json()["results"])


async def test_the_api_searches_what_an_assistant_reads(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    _, key = await make_organisation_with_key(database)
    _, other_key = await make_organisation_with_key(database)
    with (
        live_server.client(headers={"authorization": f"Bearer {key}"}) as api,
        live_server.client(headers={"authorization": f"Bearer {other_key}"}) as other,
    ):
        api.post(
            "/api/v1/knowledge/documents",
            json={"title": "Returns", "text": DOCUMENTS["Returns"], "collection": "policies"},
        )
        api.post(
            "/api/v1/knowledge/documents",
            json={"title": "Returns (wholesale)", "text": DOCUMENTS["Returns"]},
        )
        assistant = api.post(
            "/api/v1/assistants", json={"name": "Mia", "knowledge_collections": ["policies"]}
        ).json()
        await run_jobs(database, settings)
        found = search(api, QUESTION, assistant_id=assistant["id"])
        both = api.post(
            "/api/v1/knowledge/search",
            json={"query": QUESTION, "assistant_id": assistant["id"], "collection": "default"},
        )
        elsewhere = other.post(
            "/api/v1/knowledge/search", json={"query": QUESTION, "assistant_id": assistant["id"]}
        )
    assert [r["title"] for r in found] == ["Returns"]
    assert both.status_code == 422
    assert elsewhere.status_code == 404  # another organisation's assistant does not exist
