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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import structlog
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.analytics import embedding_usage
from cybergine.catalog.shape import DEFAULT_VARIANT_TITLE
from cybergine.knowledge.embeddings import EmbeddingError, EmbeddingProvider
from cybergine.knowledge.embeddings.base import metering
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
# At most this many word matches are ranked per query: first products with every word of
# the question, then, if they are too few, products with some (the rest are reached by
# meaning). A word common to a third of a large catalogue ("shoe") would otherwise have
# every one of its products checked against the filters.
LEXICAL_POOL = 300
MAX_RESULTS = 20
MAX_QUERY_CHARS = 500
# ts_rank_cd's weights for D, C, B, A: the title counts ten times the description.
_RANK_WEIGHTS = "{0.1, 0.3, 0.6, 1.0}"

# The nearest products by meaning are taken from the HNSW index first and filtered after:
# with the filters inside, PostgreSQL may measure the distance of every product that
# passes them instead (40 ms at 100,000 products, bench/shopify.py). Under very selective
# filters fewer of them remain; the words' candidates are filtered exactly.
# Cheap necessary conditions on the search row first (prices, currency, stock), then one
# variant meeting every filter together, checked in the row's JSON of its variants
# (``search_index``) with the path of :func:`variant_path`: no other table is read.
_SCOPE = """
    s.organisation_id = :organisation_id AND s.visible
    AND (CAST(:max_price AS numeric) IS NULL OR s.min_price <= CAST(:max_price AS numeric))
    AND (CAST(:min_price AS numeric) IS NULL OR s.max_price >= CAST(:min_price AS numeric))
    AND (CAST(:currency AS text) IS NULL OR s.currency = CAST(:currency AS text))
    AND (NOT :in_stock OR s.available)
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
    AND jsonb_path_exists(s.variants, CAST(:variant_path AS jsonpath), CAST(:path_vars AS jsonb))
"""

_CANDIDATES_SQL = f"""
WITH q AS MATERIALIZED (
    SELECT (string_agg(quote_literal(lexeme), ' | '))::tsquery AS tsq,
           (string_agg(quote_literal(lexeme), ' & '))::tsquery AS tsq_all
    FROM unnest(to_tsvector('{TEXT_SEARCH_CONFIG}', :query))
),
every_word AS MATERIALIZED (
    SELECT s.product_id, s.tsv FROM catalog_product_search s, q
    WHERE q.tsq_all IS NOT NULL AND s.tsv @@ q.tsq_all AND {_SCOPE}
    LIMIT :pool
),
some_word AS MATERIALIZED (
    SELECT s.product_id, s.tsv FROM catalog_product_search s, q
    WHERE (SELECT count(*) FROM every_word) < :candidates
      AND q.tsq IS NOT NULL AND s.tsv @@ q.tsq AND {_SCOPE}
    -- Taken as they come, unranked, until CANDIDATES pass the filters: a sample of a
    -- common word's thousands either way. A larger one mostly costs rows checked under
    -- selective filters (6,000 for 100 at 100,000 products, a third of such a search's
    -- time); with 40 instead of 100 the top five of the 300 bench queries were the same
    -- (bench/shopify.py, search section).
    LIMIT :candidates
),
lexical AS MATERIALIZED (
    SELECT m.product_id FROM (SELECT * FROM every_word UNION ALL SELECT * FROM some_word) m, q
    ORDER BY ts_rank_cd('{_RANK_WEIGHTS}', m.tsv, q.tsq) DESC LIMIT :candidates
),
nearest AS MATERIALIZED (
    SELECT s.product_id FROM catalog_product_search s
    WHERE :use_dense AND s.organisation_id = :organisation_id
      AND s.embedding_model = :embedding_model
    ORDER BY s.embedding <=> CAST(:query_vector AS vector)
    LIMIT :candidates
),
dense AS MATERIALIZED (
    SELECT s.product_id FROM nearest n
    JOIN catalog_product_search s ON s.product_id = n.product_id
    WHERE {_SCOPE}
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

# The products found, with the variants that meet the filters (the same path).
_VARIANTS_SQL = """
SELECT p.id AS product_id, p.title, p.url,
       jsonb_path_query_array(
           s.variants, CAST(:variant_path AS jsonpath), CAST(:path_vars AS jsonb)) AS variants
FROM catalog_product_search s
JOIN catalog_products p ON p.id = s.product_id
WHERE s.organisation_id = :organisation_id AND s.product_id = ANY(:product_ids) AND s.visible
"""

_CANDIDATES = text(_CANDIDATES_SQL)
_VARIANTS = text(_VARIANTS_SQL).bindparams(
    bindparam("product_ids", type_=ARRAY(UUID(as_uuid=True)))
)

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


# How ``ProductFilters.describe`` says the filters, in English.
DESCRIBE_WORDS: Mapping[str, str] = {
    "between": "between {low} and {high}",
    "at_most": "at most {amount}",
    "at_least": "from {amount}",
    "option": "option",
    "in_stock": "in stock",
    "collection": "collection",
    "type": "type",
    "vendor": "vendor",
}


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

    def describe(self, words: Mapping[str, str] | None = None) -> str:
        """The filters in words, for the text of an answer and the tool's result;
        ``words``: the phrases in the answer's language (``DESCRIBE_WORDS``'s keys)."""
        said = {**DESCRIBE_WORDS, **(words or {})}
        parts = []
        currency = f" {self.currency}" if self.currency else ""
        low, high = self.min_price, self.max_price
        if low is not None and high is not None:
            parts.append(said["between"].format(low=low, high=high) + currency)
        elif high is not None:
            parts.append(said["at_most"].format(amount=high) + currency)
        elif low is not None:
            parts.append(said["at_least"].format(amount=low) + currency)
        for option in self.options:
            parts.append(f"{option.names[0] if option.names else said['option']} {option.value}")
        if self.in_stock:
            parts.append(said["in_stock"])
        for name, value in (
            ("collection", self.collection),
            ("type", self.product_type),
            ("vendor", self.vendor),
        ):
            if value:
                parts.append(f"{said[name]} {value}")
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


def option_key(value: str) -> str:
    """An option's name or value as search rows keep it (``search_index``): lower-cased
    the way PostgreSQL's ``lower()`` does. Not ``casefold()``, which makes "Weiß" "weiss",
    a value no row holds."""
    return _clean(value.lower())


def _optional(value: str | None) -> str | None:
    return _clean(value) if value else None


def variant_path(filters: ProductFilters) -> tuple[str, dict[str, Any]]:
    """The one rule of a matching variant, as an SQL/JSON path over a search row's
    variants and its variables: price within the bounds, in the currency, in stock when
    asked, and each option value asked (under one of its names, when given). The path is
    made of fixed pieces; every value asked is a variable, never part of the path."""
    conditions: list[str] = []
    variables: dict[str, Any] = {}
    if filters.min_price is not None:
        conditions.append("@.p >= $min")
        variables["min"] = float(filters.min_price)
    if filters.max_price is not None:
        conditions.append("@.p <= $max")
        variables["max"] = float(filters.max_price)
    if filters.currency:
        conditions.append("@.c == $currency")
        variables["currency"] = _clean(filters.currency.upper())
    if filters.in_stock:
        conditions.append("@.a == true")
    for n, option in enumerate(filters.options):
        wanted = f"@.v == $v{n}"
        variables[f"v{n}"] = option_key(option.value)
        if option.names:
            wanted += f" && @.n == $n{n}[*]"
            variables[f"n{n}"] = [option_key(name) for name in option.names]
        conditions.append(f"exists(@.o[*] ? ({wanted}))")
    path = f"$[*] ? ({' && '.join(conditions)})" if conditions else "$[*]"
    return path, variables


def _parameters(organisation_id: uuid.UUID, filters: ProductFilters) -> dict[str, Any]:
    path, variables = variant_path(filters)
    return {
        "organisation_id": organisation_id,
        "min_price": filters.min_price,
        "max_price": filters.max_price,
        "currency": _optional(filters.currency.upper() if filters.currency else None),
        "in_stock": filters.in_stock,
        "collection": _optional(filters.collection),
        "product_type": _optional(filters.product_type),
        "vendor": _optional(filters.vendor),
        "variant_path": path,
        "path_vars": json.dumps(variables),
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
        with metering() as usage:
            query_vector = await embed_query(provider, query)
        await embedding_usage.record(
            session, organisation_id, usage, purpose=embedding_usage.Purpose.PRODUCT_SEARCH
        )
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
    products = {
        row.product_id: row
        for row in await session.execute(
            _VARIANTS, {**parameters, "product_ids": [row[0] for row in ranked]}
        )
    }
    hits = []
    for product_id, score, lexical, dense in ranked:
        found = products.get(product_id)
        if found is None or not found.variants:  # changed between the two statements
            continue
        hits.append(
            ProductHit(
                product_id=product_id,
                title=found.title,
                url=found.url,
                score=round(score, 6),
                lexical=round(lexical, 6),
                dense=None if dense is None else round(dense, 6),
                variants=tuple(_variant(v) for v in found.variants),
            )
        )
    return hits


def _variant(stored: dict[str, Any]) -> MatchedVariant:
    """A variant as ``search_index`` stores it in the search row."""
    return MatchedVariant(
        id=uuid.UUID(stored["id"]),
        title=stored["title"],
        price=Decimal(stored["price"]),
        compare_at_price=Decimal(stored["compare_at"]) if stored.get("compare_at") else None,
        currency=stored["c"],
        available=stored["a"] is True,
        image_url=stored.get("image"),
    )


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
    wanted = sorted({option_key(c) for c in candidates if c.strip()})
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
