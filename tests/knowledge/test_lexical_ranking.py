"""The lexical ranking is BM25, computed in PostgreSQL: checked against a direct
implementation of the formula over the same lexemes."""

from __future__ import annotations

import asyncio
import math
import uuid

from sqlalchemy import text

from cybergine.accounts.service.organisations import create_organisation
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.knowledge import indexing, service
from cybergine.knowledge import search as retrieval
from cybergine.knowledge.models import ItemKind

DOCUMENTS = [
    "Free shipping on orders above fifty euros. Shipping takes three days.",
    "Returns are free within thirty days. Start a return from your order page.",
    "Gift cards never expire and can be used in our shops and online.",
    "Express shipping arrives the next working day; express costs nine euros.",
    "Our shops open at nine; the online shop never closes.",
]


async def _index(database: Database) -> uuid.UUID:
    async with database.transaction() as session:
        organisation = await create_organisation(session, name="Lexical")
        items = [
            await service.create_document(
                TenantScope(session, organisation.id), title="", body=body
            )
            for body in DOCUMENTS
        ]
    for item in items:
        await indexing.index_item(database, item.id, item.version, None)
    return organisation.id


async def test_scores_equal_the_bm25_formula(database: Database) -> None:
    organisation_id = await _index(database)
    query = "express shipping days"
    async with database.transaction() as session:
        rows = (
            await session.execute(
                text(
                    "SELECT c.id, u.lexeme, array_length(u.positions, 1) AS tf, length(c.tsv)"
                    " FROM kb_chunks c, unnest(c.tsv) u WHERE c.organisation_id = :o"
                ),
                {"o": organisation_id},
            )
        ).all()
        terms = [
            r[0]
            for r in (
                await session.execute(
                    text("SELECT DISTINCT lexeme FROM unnest(to_tsvector('english', :q))"),
                    {"q": query},
                )
            ).all()
        ]
        hits = await retrieval.search(
            session,
            organisation_id=organisation_id,
            query=query,
            query_vector=None,
            k=10,
        )

    chunks: dict[object, dict[str, int]] = {}
    lengths: dict[object, int] = {}
    for chunk_id, lexeme, tf, length in rows:
        chunks.setdefault(chunk_id, {})[lexeme] = tf
        lengths[chunk_id] = length
    n = len(chunks)
    avgdl = sum(lengths.values()) / n
    k1, b = retrieval.BM25_K1, retrieval.BM25_B

    def bm25(chunk_id: object) -> float:
        score = 0.0
        for term in terms:
            tf = chunks[chunk_id].get(term, 0)
            if not tf:
                continue
            df = sum(1 for c in chunks.values() if term in c)
            idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
            score += idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * lengths[chunk_id] / avgdl))
        return score

    expected = sorted(((bm25(c), c) for c in chunks if bm25(c) > 0), key=lambda p: -p[0])
    assert [h.chunk_id for h in hits] == [c for _, c in expected]
    for hit, (score, _) in zip(hits, expected, strict=True):
        assert abs(hit.lexical.score - score) < 1e-5
    # The rarer "express" (in one document, twice) outranks the common "shipping".
    assert "Express shipping" in hits[0].text


async def test_stop_words_only_match_nothing(database: Database) -> None:
    organisation_id = await _index(database)
    async with database.transaction() as session:
        hits = await retrieval.search(
            session,
            organisation_id=organisation_id,
            query="the and of",
            query_vector=None,
        )
    assert hits == []


async def test_corpus_statistics_stay_exact_through_inserts_edits_and_deletes(
    database: Database,
) -> None:
    organisation_id = await _index(database)

    async def stats() -> tuple[tuple[int, int], tuple[int, int]]:
        async with database.transaction() as session:
            kept = (
                await session.execute(
                    text(
                        "SELECT chunk_count, total_length FROM kb_index_stats"
                        " WHERE organisation_id = :o"
                    ),
                    {"o": organisation_id},
                )
            ).one()
            actual = (
                await session.execute(
                    text(
                        "SELECT count(*), coalesce(sum(length(tsv)), 0) FROM kb_chunks"
                        " WHERE organisation_id = :o"
                    ),
                    {"o": organisation_id},
                )
            ).one()
        return (int(kept[0]), int(kept[1])), (int(actual[0]), int(actual[1]))

    kept, actual = await stats()
    assert kept == actual
    assert actual[0] == len(DOCUMENTS)

    async with database.transaction() as session:
        scope = TenantScope(session, organisation_id)
        page = await service.list_items(scope, ItemKind.DOCUMENT)
        first, second = page.items[0], page.items[1]
        await service.delete_item(scope, first.id, ItemKind.DOCUMENT)
        await service.update_item(
            scope,
            second.id,
            ItemKind.DOCUMENT,
            service.ItemChanges(body="A much longer text about parcels, lockers and couriers."),
        )
    await indexing.index_item(database, second.id, second.version + 1, None)
    kept, actual = await stats()
    assert kept == actual
    assert actual[0] == len(DOCUMENTS) - 1


async def test_concurrent_indexing_keeps_statistics_exact(database: Database) -> None:
    async with database.transaction() as session:
        organisation = await create_organisation(session, name="Busy")
        scope = TenantScope(session, organisation.id)
        items = [
            await service.create_document(
                scope, title=f"Doc {n}", body=" ".join(DOCUMENTS[n % 5 :])
            )
            for n in range(12)
        ]
    results = await asyncio.gather(
        *(indexing.index_item(database, item.id, item.version, None) for item in items)
    )
    assert all(results)
    async with database.transaction() as session:
        lexicon = dict(
            (
                await session.execute(
                    text("SELECT lexeme, df FROM kb_lexicon WHERE organisation_id = :o"),
                    {"o": organisation.id},
                )
            ).all()
        )
        actual = dict(
            (
                await session.execute(
                    text(
                        "SELECT u.lexeme, count(*) FROM kb_chunks c, unnest(c.tsv) u"
                        " WHERE c.organisation_id = :o GROUP BY u.lexeme"
                    ),
                    {"o": organisation.id},
                )
            ).all()
        )
    assert lexicon == actual
