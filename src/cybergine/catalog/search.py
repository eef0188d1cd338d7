"""Product search inside PostgreSQL: the words of a question (tsvector over title, type,
vendor, tags, collections, options and description) and its meaning (the local
embedding model's vectors, HNSW), fused by knowledge retrieval's rule
(``knowledge.search.shares``), under exact filters.

The filters are exact, and on one variant at once: a product qualifies when one of its
variants has the price asked (in the currency asked), the option values asked, and, when
asked, stock. A result lists those variants. What is never shown as available:

- an unpublished product (draft, archived, or not published) is never returned at all;
- a product out of stock is returned only when the question does not ask for stock, and
  its card says it is unavailable (``available`` is the variant's stock or policy, read in
  the same statement as the price).

Relevance: a product is a result when it shares a word with the question or its vector
is close enough (``MIN_SIMILARITY``), and it scores at least half the best result
(``RELATIVE_FLOOR``); a search with no words (filters only) lists the newest products
that pass the filters. Every statement is scoped to one organisation.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.catalog.shape import DEFAULT_VARIANT_TITLE
from cybergine.knowledge.embeddings import EmbeddingError, EmbeddingProvider
from cybergine.knowledge.models import TEXT_SEARCH_CONFIG
from cybergine.knowledge.search import FusionWeights, shares, vector_literal

log = structlog.get_logger(__name__)

# Products are short texts whose names carry the meaning: words weigh more than in the
# knowledge base's passages (0.1 there).
PRODUCT_WEIGHTS = FusionWeights(dense=0.6, lexical=0.4)
# A product found by meaning alone must be at least this close to the question
# (all-MiniLM-L6-v2 cosine; "trail shoes" and a trail running shoe are about 0.5-0.7).
MIN_SIMILARITY = 0.4
# Results score at least this share of the best one's: "waterproof trail shoes" then
# lists the trail shoes, not every product that only shares the word "shoe" with it
# (fused scores of the test catalogue: trail shoes 0.6-0.9, a road shoe 0.34, socks 0.26),
# while a broad "shoes" keeps every shoe (0.45-0.7).
RELATIVE_FLOOR = 0.5
CANDIDATES = 40
# At most this many word matches are ranked per query (the rest are reached by meaning).
LEXICAL_POOL = 1000
MAX_RESULTS = 20
MAX_QUERY_CHARS = 500
# ts_rank_cd's weights for D, C, B, A: the title counts ten times the description.
_RANK_WEIGHTS = "{0.1, 0.3, 0.6, 1.0}"

# Whether a variant can be ordered now; the SQL twin of ``catalog.models.Variant.available``.
_AVAILABLE = (
    "(v.inventory_quantity IS NULL OR v.inventory_quantity > 0 OR v.inventory_policy = 'continue')"
)
_OPTION_VALUE = (
    "lower(CASE o.position WHEN 1 THEN v.option1 WHEN 2 THEN v.option2 WHEN 3 THEN v.option3 END)"
)
# One variant satisfies price, currency, stock and every option asked together.
_VARIANT_MATCH = f"""
    (CAST(:min_price AS numeric) IS NULL OR v.price >= CAST(:min_price AS numeric))
    AND (CAST(:max_price AS numeric) IS NULL OR v.price <= CAST(:max_price AS numeric))
    AND (CAST(:currency AS text) IS NULL OR v.currency = CAST(:currency AS text))
    AND (NOT :in_stock OR {_AVAILABLE})
    AND NOT EXISTS (
        SELECT 1 FROM jsonb_array_elements(CAST(:options AS jsonb)) AS f(wanted)
        WHERE NOT EXISTS (
            SELECT 1 FROM catalog_product_options o
            WHERE o.product_id = v.product_id
              AND {_OPTION_VALUE} = f.wanted ->> 'value'
              AND (jsonb_array_length(f.wanted -> 'names') = 0
                   OR lower(o.name) IN (SELECT jsonb_array_elements_text(f.wanted -> 'names')))))
"""  # noqa: S608
_SCOPE = f"""
    s.organisation_id = :organisation_id AND s.visible
    AND (CAST(:product_type AS text) IS NULL OR EXISTS (
        SELECT 1 FROM catalog_products p WHERE p.id = s.product_id
          AND lower(p.product_type) = lower(CAST(:product_type AS text))))
    AND (CAST(:vendor AS text) IS NULL OR EXISTS (
        SELECT 1 FROM catalog_products p WHERE p.id = s.product_id
          AND lower(p.vendor) = lower(CAST(:vendor AS text))))
    AND (CAST(:collection AS text) IS NULL OR EXISTS (
        SELECT 1 FROM catalog_collection_products m
        JOIN catalog_collections c ON c.id = m.collection_id
        WHERE m.product_id = s.product_id
          AND (c.handle = lower(CAST(:collection AS text))
               OR lower(c.title) = lower(CAST(:collection AS text)))))
    AND EXISTS (SELECT 1 FROM catalog_variants v WHERE v.product_id = s.product_id
                AND {_VARIANT_MATCH})
"""  # noqa: S608

_CANDIDATES_SQL = f"""
WITH q AS MATERIALIZED (
    SELECT (SELECT string_agg(quote_literal(lexeme), ' | ')
            FROM unnest(to_tsvector('{TEXT_SEARCH_CONFIG}', :query)))::tsquery AS tsq
),
lexical_matches AS MATERIALIZED (
    SELECT s.product_id, s.tsv FROM catalog_product_search s, q
    WHERE q.tsq IS NOT NULL AND s.tsv @@ q.tsq AND {_SCOPE}
    LIMIT :pool
),
lexical AS MATERIALIZED (
    SELECT m.product_id FROM lexical_matches m, q
    ORDER BY ts_rank_cd('{_RANK_WEIGHTS}', m.tsv, q.tsq) DESC LIMIT :candidates
),
dense AS MATERIALIZED (
    SELECT s.product_id FROM catalog_product_search s
    WHERE :use_dense AND s.embedding_model = :embedding_model AND {_SCOPE}
    ORDER BY s.embedding <=> CAST(:query_vector AS vector)
    LIMIT :candidates
),
browse AS MATERIALIZED (
    SELECT s.product_id FROM catalog_product_search s
    WHERE :browse AND {_SCOPE}
    ORDER BY s.product_id DESC
    LIMIT :candidates
),
candidates AS (
    SELECT product_id FROM lexical UNION SELECT product_id FROM dense
    UNION SELECT product_id FROM browse
)
SELECT s.product_id,
       coalesce(CASE WHEN s.tsv @@ q.tsq THEN ts_rank_cd('{_RANK_WEIGHTS}', s.tsv, q.tsq) END,
                0)::float8 AS lexical,
       CASE WHEN :use_dense AND s.embedding_model = :embedding_model
            THEN (1 - (s.embedding <=> CAST(:query_vector AS vector)))::float8 END AS dense
FROM candidates c JOIN catalog_product_search s ON s.product_id = c.product_id CROSS JOIN q
"""  # noqa: S608

_VARIANTS_SQL = f"""
SELECT p.id AS product_id, p.title AS product_title, p.url,
       coalesce(
           (SELECT i.src FROM catalog_images i WHERE i.id = v.image_id),
           (SELECT i.src FROM catalog_images i WHERE i.product_id = p.id
            ORDER BY i.position LIMIT 1)) AS image_url,
       v.id AS variant_id, v.title AS variant_title, v.price, v.compare_at_price, v.currency,
       {_AVAILABLE} AS available
FROM catalog_products p
JOIN catalog_variants v ON v.product_id = p.id
WHERE p.organisation_id = :organisation_id AND p.id = ANY(:product_ids)
  AND p.status = 'active' AND p.published AND {_VARIANT_MATCH}
ORDER BY p.id, v.position
"""  # noqa: S608

_PARAMETERS = (
    bindparam("options", type_=JSONB),
    bindparam("product_ids", type_=ARRAY(UUID(as_uuid=True))),
)
_CANDIDATES = text(_CANDIDATES_SQL).bindparams(_PARAMETERS[0])
_VARIANTS = text(_VARIANTS_SQL).bindparams(*_PARAMETERS)

_KNOWN_VALUES = text(
    """
    SELECT c FROM unnest(CAST(:candidates AS text[])) AS c
    WHERE EXISTS (SELECT 1 FROM catalog_product_search s
                  WHERE s.organisation_id = :organisation_id AND s.visible
                    AND s.option_values @> ARRAY[c]::varchar[])
    """
)
_HAS_PRODUCTS = text(
    "SELECT EXISTS (SELECT 1 FROM catalog_product_search "
    "WHERE organisation_id = :organisation_id AND visible)"
)


@dataclass(frozen=True)
class OptionFilter:
    """One option value asked for ("42"), compared case-insensitively with a variant's;
    ``names``: the option names it may be under, lower-cased ("size", "taille"), or empty
    for any option."""

    value: str
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProductFilters:
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    currency: str | None = None  # ISO 4217; prices are compared in it, never converted
    in_stock: bool = False
    options: tuple[OptionFilter, ...] = ()
    collection: str | None = None  # a collection's handle or title
    product_type: str | None = None
    vendor: str | None = None

    def describe(self) -> str:
        """The filters in words, for the text of an answer and the tool's result."""
        parts = []
        currency = f" {self.currency}" if self.currency else ""
        if self.min_price is not None and self.max_price is not None:
            parts.append(f"between {self.min_price} and {self.max_price}{currency}")
        elif self.max_price is not None:
            parts.append(f"at most {self.max_price}{currency}")
        elif self.min_price is not None:
            parts.append(f"from {self.min_price}{currency}")
        parts.extend(f"{o.names[0] if o.names else 'option'} {o.value}" for o in self.options)
        if self.in_stock:
            parts.append("in stock")
        for name, value in (
            ("collection", self.collection),
            ("type", self.product_type),
            ("vendor", self.vendor),
        ):
            if value:
                parts.append(f"{name} {value}")
        return ", ".join(parts)


@dataclass(frozen=True)
class MatchedVariant:
    id: uuid.UUID
    title: str
    price: Decimal
    compare_at_price: Decimal | None
    currency: str
    available: bool
    image_url: str | None


@dataclass(frozen=True)
class ProductHit:
    product_id: uuid.UUID
    title: str
    url: str | None
    score: float
    lexical: float  # ts_rank_cd, 0 without a word in common
    dense: float | None  # cosine similarity; None when not compared
    variants: tuple[MatchedVariant, ...] = field(default_factory=tuple)  # those that match

    @property
    def available(self) -> bool:
        return any(v.available for v in self.variants)

    @property
    def shown_variant(self) -> MatchedVariant:
        """The variant a card shows: the cheapest that can be ordered, else the cheapest."""
        return min(self.variants, key=lambda v: (not v.available, v.price))


def _clean(value: str) -> str:
    # PostgreSQL's text cannot hold NUL; a question or a model's argument may.
    return value.replace("\x00", "")


def _optional(value: str | None) -> str | None:
    return _clean(value) if value else None


def _parameters(organisation_id: uuid.UUID, filters: ProductFilters) -> dict[str, Any]:
    return {
        "organisation_id": organisation_id,
        "min_price": filters.min_price,
        "max_price": filters.max_price,
        "currency": _optional(filters.currency.upper() if filters.currency else None),
        "in_stock": filters.in_stock,
        "options": [
            {"value": _clean(o.value.casefold()), "names": [_clean(n.casefold()) for n in o.names]}
            for o in filters.options
        ],
        "collection": _optional(filters.collection),
        "product_type": _optional(filters.product_type),
        "vendor": _optional(filters.vendor),
    }


async def embed_query(provider: EmbeddingProvider | None, query: str) -> list[float] | None:
    """The query's vector, or None (no model, no words, or the model failed: the search
    is then by words alone rather than not at all)."""
    if provider is None or not query.strip():
        return None
    try:
        (vector,) = await provider.embed([query], kind="query")
    except EmbeddingError as error:
        log.warning("catalog.search.embedding_failed", error=str(error))
        return None
    return vector


async def search_products(
    session: AsyncSession,
    organisation_id: uuid.UUID,
    query: str,
    filters: ProductFilters | None = None,
    *,
    provider: EmbeddingProvider | None = None,
    query_vector: Sequence[float] | None = None,
    k: int = 5,
) -> list[ProductHit]:
    """The ``k`` best visible products of the organisation for ``query`` under
    ``filters``, each with its matching variants; ``provider`` embeds the query (or pass
    ``query_vector``). An empty query lists products by the filters alone."""
    filters = filters or ProductFilters()
    query = _clean(query[:MAX_QUERY_CHARS])
    k = max(1, min(k, MAX_RESULTS))
    if query_vector is None:
        query_vector = await embed_query(provider, query)
    use_dense = query_vector is not None and provider is not None
    parameters = _parameters(organisation_id, filters)
    rows = (
        await session.execute(
            _CANDIDATES,
            {
                **parameters,
                "query": query,
                "use_dense": use_dense,
                "embedding_model": provider.name if provider is not None else None,
                "query_vector": vector_literal(query_vector)
                if use_dense and query_vector
                else None,
                "browse": not query.strip(),
                "candidates": max(CANDIDATES, k),
                "pool": LEXICAL_POOL,
            },
        )
    ).all()
    browsing = not query.strip()
    ranked = _fuse(rows, browsing=browsing)[:k]
    if not ranked:
        return []
    variants = (
        await session.execute(_VARIANTS, {**parameters, "product_ids": [row[0] for row in ranked]})
    ).all()
    by_product: dict[uuid.UUID, list[Any]] = {}
    for variant in variants:
        by_product.setdefault(variant.product_id, []).append(variant)
    hits = []
    for product_id, score, lexical, dense in ranked:
        found = by_product.get(product_id)
        if not found:  # changed between the two statements
            continue
        hits.append(
            ProductHit(
                product_id=product_id,
                title=found[0].product_title,
                url=found[0].url,
                score=round(score, 6),
                lexical=round(lexical, 6),
                dense=None if dense is None else round(dense, 6),
                variants=tuple(
                    MatchedVariant(
                        id=v.variant_id,
                        title=v.variant_title,
                        price=v.price,
                        compare_at_price=v.compare_at_price,
                        currency=v.currency,
                        available=v.available,
                        image_url=v.image_url,
                    )
                    for v in found
                ),
            )
        )
    return hits


def _fuse(
    rows: Sequence[Any], *, browsing: bool
) -> list[tuple[uuid.UUID, float, float, float | None]]:
    """(product, fused score, lexical, dense), best first, relevant ones only."""
    if browsing:
        return [(row.product_id, 0.0, 0.0, None) for row in rows]
    relevant = [
        row
        for row in rows
        if row.lexical > 0 or (row.dense is not None and row.dense >= MIN_SIMILARITY)
    ]
    best_lexical = max((row.lexical for row in relevant), default=0.0) or 1.0
    fused = []
    for row in relevant:
        dense_share, lexical_share = shares(row.lexical / best_lexical, row.dense, PRODUCT_WEIGHTS)
        fused.append((row.product_id, dense_share + lexical_share, row.lexical, row.dense))
    fused.sort(key=lambda entry: (-entry[1], str(entry[0])))
    floor = fused[0][1] * RELATIVE_FLOOR if fused else 0.0
    return [entry for entry in fused if entry[1] >= floor]


async def known_option_values(
    session: AsyncSession, organisation_id: uuid.UUID, candidates: Sequence[str]
) -> set[str]:
    """Which of ``candidates`` (lower-cased words and phrases of a question) are option
    values of one of the organisation's visible products."""
    wanted = sorted({_clean(c.casefold()) for c in candidates if c.strip()})
    if not wanted:
        return set()
    result = await session.scalars(
        _KNOWN_VALUES, {"organisation_id": organisation_id, "candidates": wanted}
    )
    return set(result)


async def has_products(session: AsyncSession, organisation_id: uuid.UUID) -> bool:
    """Whether the organisation has a product a customer may see."""
    return bool(await session.scalar(_HAS_PRODUCTS, {"organisation_id": organisation_id}))


# --- Cards (the contract of messages.payload["products"]) -------------------------------


def product_card(hit: ProductHit, *, show_variant: bool = False) -> dict[str, Any]:
    """The card of one result, the only place a card is made: ``price`` is the shown
    variant's (the cheapest matching one that can be ordered), ``available`` whether it
    can be ordered; ``variant`` its title ("42 / Black") when ``show_variant`` (the
    question asked for option values) and it has one."""
    variant = hit.shown_variant
    title = variant.title if variant.title and variant.title != DEFAULT_VARIANT_TITLE else None
    return {
        "id": str(hit.product_id),
        "title": hit.title,
        "url": hit.url,
        "image_url": variant.image_url,
        "price": f"{variant.price:.2f}",
        "currency": variant.currency,
        "compare_at_price": (
            f"{variant.compare_at_price:.2f}" if variant.compare_at_price is not None else None
        ),
        "available": variant.available,
        "variant": title if show_variant else None,
    }


STOCK_WORDS = ("in stock", "out of stock")


def cards_text(
    cards: Sequence[dict[str, Any]], *, intro: str = "", stock_words: tuple[str, str] = STOCK_WORDS
) -> str:
    """The plain-text rendering of cards (``message.text``): one line per product with
    its price, availability (``stock_words``: available, unavailable, in the answer's
    language) and link, so every channel and export reads without cards."""
    lines = [intro] if intro else []
    for card in cards:
        name = card["title"] + (f" ({card['variant']})" if card.get("variant") else "")
        stock = stock_words[0] if card["available"] else stock_words[1]
        was = f" (was {card['compare_at_price']})" if card.get("compare_at_price") else ""
        link = f" {card['url']}" if card.get("url") else ""
        lines.append(f"- {name}: {card['price']} {card['currency']}{was}, {stock}{link}")
    return "\n".join(lines)


def tool_result(hits: Sequence[ProductHit], filters: ProductFilters) -> str:
    """What the ``search_products`` tool answers a model: the products as JSON (the
    cards' facts), so it quotes prices and availability as they are."""
    cards = [product_card(hit, show_variant=bool(filters.options)) for hit in hits]
    return json.dumps(
        {"filters": filters.describe(), "count": len(cards), "products": cards},
        ensure_ascii=False,
    )
