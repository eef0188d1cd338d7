"""Hybrid retrieval inside PostgreSQL: BM25 over the chunks' tsvectors, cosine similarity
over their pgvector embeddings (HNSW), fused by a weighted sum.

Why not ``ts_rank``: it scores term frequency with no inverse document frequency and a
crude length normalisation, so a common word counts as much as a rare one. BM25 here is
computed in SQL from the tsvector positions: term frequency per chunk, document
frequency per query term over the organisation's chunks, and chunk length (its number of
distinct lexemes).

Why not plain reciprocal-rank fusion: it throws the scores away and lets the weaker
ranker pull a confident answer down. Instead both candidate lists are merged and *both*
scores are computed exactly for every candidate; the final score is
``dense_weight * cosine + lexical_weight * bm25 / max_bm25``. Cosine is already on a
comparable scale across queries; BM25 is normalised by the best candidate's score. The
weights were chosen on the rag-dev split (`bench/retrieval.py`).

Results are one per item (the best chunk of each document or Q&A pair), best first; for a
Q&A pair the text returned is its answer. Each result says how it was scored (both
signals, their ranks and their shares of the fused score) and whether it clears the
grounding threshold, under which the assistant does not answer from it: the dashboard's
retrieval tester and the API's ``explain`` show exactly this.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.knowledge.chunking import without_context_line
from cybergine.knowledge.models import TEXT_SEARCH_CONFIG

BM25_K1 = 1.2
BM25_B = 0.75
# At most this many chunks are scored by BM25 as lexical candidates per query.
LEXICAL_POOL = 1500


@dataclass(frozen=True)
class FusionWeights:
    # Chosen on rag-dev (bench/retrieval.py --sweep): from 0.5 to 0.9 the dense weight
    # improves both tracks; at 0.9 hybrid is at or above dense alone on both, and the
    # lexical share still lifts exact-term matches (product codes, names).
    dense: float = 0.9
    lexical: float = 0.1


DEFAULT_WEIGHTS = FusionWeights()

# The grounding threshold: cosine similarity (all-MiniLM-L6-v2) above which a passage is
# taken to answer the question, and the BM25 score that stands in for it when the passage
# has no vector comparable with the query's (search is lexical only, or the item is not yet
# re-indexed with the current model). Below it the assistant does not answer from it.
MIN_SIMILARITY = 0.45
MIN_BM25 = 3.0


@dataclass(frozen=True)
class Filters:
    collection_ids: Sequence[uuid.UUID] | None = None
    metadata: Mapping[str, Any] | None = None  # items whose metadata contains this (jsonb @>)


@dataclass(frozen=True)
class Component:
    rank: int | None  # 1-based rank among the candidates by this signal alone
    score: float  # cosine similarity, or the raw BM25 score
    # What this signal adds to the hit's fused score: the dense weight times the cosine;
    # the lexical weight times BM25 over the best candidate's (all of it when the hit has
    # no dense score). The shares of a hit add up to its score.
    contribution: float = 0.0


@dataclass(frozen=True)
class Hit:
    chunk_id: uuid.UUID
    item_id: uuid.UUID
    external_id: str | None
    title: str
    text: str
    kind: str  # "document" | "qa"
    score: float
    lexical: Component
    dense: Component | None

    @property
    def grounded(self) -> bool:
        """Whether the hit clears the grounding threshold (see `grounded`)."""
        return grounded(self)

    @property
    def quote(self) -> str:
        """The words a customer may be shown: a Q&A pair's answer, or a document's chunk
        without the heading-path line indexing put at its top for retrieval."""
        if self.kind == "qa":
            return self.text.strip()
        return without_context_line(self.text, self.title).strip()


def grounded(hit: Hit) -> bool:
    """Whether an answer may be grounded in ``hit``: its similarity to the question when
    it has one, else its BM25 score."""
    if hit.dense is not None:
        return hit.dense.score >= MIN_SIMILARITY
    return hit.lexical.score >= MIN_BM25


_SCOPE = """
    c.organisation_id = :organisation_id
    AND (CAST(:collection_ids AS uuid[]) IS NULL OR c.collection_id = ANY(:collection_ids))
    AND (CAST(:metadata AS jsonb) IS NULL OR EXISTS (
        SELECT 1 FROM kb_items mi WHERE mi.id = c.item_id AND mi.metadata @> :metadata))
"""

# Every CTE is MATERIALIZED: PostgreSQL would otherwise inline the corpus statistics and
# document frequencies into the per-chunk scoring and recompute them for every row.
#
# Bounded work at any corpus size:
# - corpus size, average chunk length and each lexeme's document frequency come from
#   kb_index_stats and kb_lexicon, kept exact by triggers on kb_chunks;
# - lexical candidates are the chunks holding the query's rarest terms: terms are taken
#   from the rarest up while their frequencies add up to at most :pool (always at least
#   the rarest one). Chunks matching only common terms score low; if they are dense
#   candidates, their BM25 is still computed exactly below;
# - a chunk's term frequencies are read from its tsvector reduced to the query's lexemes
#   (setweight + ts_filter, both in C) instead of unnesting the whole vector.
_SEARCH_SQL = f"""
WITH qlex AS MATERIALIZED (
    SELECT DISTINCT lexeme FROM unnest(to_tsvector('{TEXT_SEARCH_CONFIG}', :query))
),
corpus AS MATERIALIZED (
    SELECT greatest(coalesce(max(s.chunk_count), 0), 1)::float8 AS n,
           coalesce(max(s.total_length)::float8 / nullif(max(s.chunk_count), 0), 1) AS avgdl
    FROM kb_index_stats s WHERE s.organisation_id = :organisation_id
),
df AS MATERIALIZED (
    SELECT q.lexeme, coalesce(l.df, 0) AS df,
           sum(coalesce(l.df, 0)) OVER (ORDER BY coalesce(l.df, 0), q.lexeme) AS running
    FROM qlex q
    LEFT JOIN kb_lexicon l ON l.organisation_id = :organisation_id AND l.lexeme = q.lexeme
),
terms AS MATERIALIZED (
    SELECT array_agg(df.lexeme) AS lexemes,
           (string_agg(quote_literal(df.lexeme), ' | ') FILTER (
               WHERE df.df > 0 AND (
                   df.running <= :pool
                   OR df.running = (SELECT min(running) FROM df d WHERE d.df > 0)))
           )::tsquery AS selective
    FROM df
),
lexical_matches AS MATERIALIZED (
    SELECT c.id FROM kb_chunks c, terms
    WHERE terms.selective IS NOT NULL AND {_SCOPE} AND c.tsv @@ terms.selective
    LIMIT :pool
),
dense_candidates AS MATERIALIZED (
    SELECT c.id FROM kb_chunks c
    WHERE :use_dense AND {_SCOPE} AND c.embedding IS NOT NULL
      AND c.embedding_model = :embedding_model
    ORDER BY c.embedding <=> CAST(:query_vector AS vector)
    LIMIT :candidates
),
to_score AS MATERIALIZED (
    SELECT id FROM lexical_matches UNION SELECT id FROM dense_candidates
),
bm25 AS MATERIALIZED (
    SELECT c.id,
           sum(
               ln(1 + (corpus.n - df.df + 0.5) / (df.df + 0.5))
               * (array_length(u.positions, 1) * ({BM25_K1} + 1))
               / (array_length(u.positions, 1)
                  + {BM25_K1} * (1 - {BM25_B} + {BM25_B} * length(c.tsv) / corpus.avgdl))
           ) AS score
    FROM to_score k
    JOIN kb_chunks c ON c.id = k.id
    CROSS JOIN terms
    CROSS JOIN corpus
    CROSS JOIN LATERAL unnest(ts_filter(setweight(c.tsv, 'A', terms.lexemes), '{{a}}')) AS u
    JOIN df ON df.lexeme = u.lexeme
    GROUP BY c.id
),
candidates AS MATERIALIZED (
    (SELECT id FROM bm25 ORDER BY score DESC LIMIT :candidates)
    UNION
    SELECT id FROM dense_candidates
),
scored AS (
    SELECT c.id, c.item_id, c.text AS chunk_text,
           coalesce(b.score, 0)::float8 AS lexical,
           CASE WHEN :use_dense AND c.embedding IS NOT NULL
                     AND c.embedding_model = :embedding_model
                THEN (1 - (c.embedding <=> CAST(:query_vector AS vector)))::float8 END AS dense
    FROM candidates k
    JOIN kb_chunks c ON c.id = k.id
    LEFT JOIN bm25 b ON b.id = c.id
)
SELECT s.id, s.item_id, s.chunk_text, s.lexical, s.dense,
       i.kind, i.external_id, i.title, i.body
FROM scored s JOIN kb_items i ON i.id = s.item_id
"""  # noqa: S608


class Candidate(NamedTuple):
    """One row of the search statement, in its SELECT order: a scored chunk and its item."""

    id: uuid.UUID  # the chunk's
    item_id: uuid.UUID
    chunk_text: str
    lexical: float  # BM25, 0 without a word in common
    dense: float | None  # cosine similarity; None when not compared
    kind: str  # the item's: "document" | "qa"
    external_id: str | None
    title: str
    body: str


# Built once: every question of every reply runs it.
_SEARCH = text(_SEARCH_SQL).bindparams(
    bindparam("collection_ids", type_=ARRAY(UUID(as_uuid=True))),
    bindparam("metadata", type_=JSONB(none_as_null=True)),
)


async def search(
    session: AsyncSession,
    *,
    organisation_id: uuid.UUID,
    query: str,
    query_vector: Sequence[float] | None,
    embedding_model: str | None = None,
    k: int = 5,
    filters: Filters | None = None,
    weights: FusionWeights = DEFAULT_WEIGHTS,
    candidates: int = 40,
) -> list[Hit]:
    """The ``k`` best items for ``query``; lexical only when ``query_vector`` is None.

    Only vectors made by ``embedding_model`` are compared with the query's: after a change
    of model, items not yet re-indexed are found by their words alone.
    """
    filters = filters or Filters()
    use_dense = query_vector is not None
    result = (
        await session.execute(
            _SEARCH,
            {
                "organisation_id": organisation_id,
                "collection_ids": list(filters.collection_ids) if filters.collection_ids else None,
                "metadata": dict(filters.metadata) if filters.metadata else None,
                "query": query,
                "use_dense": use_dense,
                "embedding_model": embedding_model,
                "query_vector": _vector_literal(query_vector) if query_vector is not None else None,
                "candidates": candidates,
                "pool": LEXICAL_POOL,
            },
        )
    ).all()
    rows = [Candidate._make(row) for row in result]
    return fuse(rows, k=k, weights=weights, use_dense=use_dense)


def fuse(
    rows: Sequence[Candidate], *, k: int, weights: FusionWeights, use_dense: bool
) -> list[Hit]:
    """Weighted fusion of the exact scores, ranks for ``explain``, best chunk per item."""
    if not rows:
        return []
    best_lexical = max(row.lexical for row in rows) or 1.0
    lexical_rank = _ranks(rows, lambda row: row.lexical if row.lexical > 0 else None)
    dense_rank = _ranks(rows, lambda row: row.dense)

    scored = []
    for row in rows:
        dense_share, lexical_share = shares(
            row.lexical / best_lexical, row.dense if use_dense else None, weights
        )
        scored.append((dense_share + lexical_share, dense_share, lexical_share, row))
    scored.sort(key=lambda entry: (-entry[0], str(entry[3].id)))

    hits: list[Hit] = []
    seen: set[uuid.UUID] = set()
    for score, dense_share, lexical_share, row in scored:
        if row.item_id in seen:
            continue
        seen.add(row.item_id)
        is_qa = row.kind == "qa"
        hits.append(
            Hit(
                chunk_id=row.id,
                item_id=row.item_id,
                external_id=row.external_id,
                title=row.title,
                text=row.body if is_qa else row.chunk_text,
                kind="qa" if is_qa else "document",
                score=round(score, 6),
                lexical=Component(
                    rank=lexical_rank.get(row.id),
                    score=round(row.lexical, 6),
                    contribution=round(lexical_share, 6),
                ),
                dense=(
                    Component(
                        rank=dense_rank.get(row.id),
                        score=round(row.dense, 6),
                        contribution=round(dense_share, 6),
                    )
                    if row.dense is not None
                    else None
                ),
            )
        )
        if len(hits) == k:
            break
    return hits


def shares(lexical: float, dense: float | None, weights: FusionWeights) -> tuple[float, float]:
    """The fused score's two parts (dense, lexical) for one candidate: ``lexical`` is its
    BM25 (or rank) over the best candidate's; without a dense score, lexical is all of it.
    Product search fuses with this very rule (``catalog.search``)."""
    if dense is None:
        return 0.0, lexical
    return weights.dense * dense, weights.lexical * lexical


def _ranks(
    rows: Sequence[Candidate], key: Callable[[Candidate], float | None]
) -> dict[uuid.UUID, int]:
    keyed = ((key(row), row.id) for row in rows)
    present = [(value, chunk_id) for value, chunk_id in keyed if value is not None]
    present.sort(key=lambda pair: (-pair[0], str(pair[1])))
    return {chunk_id: rank for rank, (_, chunk_id) in enumerate(present, start=1)}


def vector_literal(vector: Sequence[float]) -> str:
    """A vector as pgvector's text input (``CAST(:v AS vector)``)."""
    return "[" + ",".join(f"{x:.7g}" for x in vector) + "]"


_vector_literal = vector_literal
