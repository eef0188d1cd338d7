"""Keeping product search in step with the catalogue (``catalog_product_search``).

Two halves, because they cost very differently:

- the lexical half (weighted tsvector, option values, visibility, and each variant's
  price, currency, stock and option values as JSON, so filters read one row) is computed
  by one SQL
  statement from the product's rows, in the transaction that writes the product
  (:func:`refresh`): a few milliseconds, so a change is searchable by its words the
  moment it commits, and a product made a draft or archived is hidden at once;
- the dense half (the embedding) is made by a job, in batches (:func:`embed_pending`,
  job ``catalog:embed_products``, one waiting and one running per organisation, queued by
  the first batch of products written, so a sync's vectors are made while it still writes
  the rest): the model embeds 128
  texts in one call far faster than 128 texts one by one, and an import of 10,000
  products never holds its transaction open while a model works. A product whose text
  did not change keeps its vector (``document_hash``), so a re-sync embeds nothing.

The text embedded (``document``) is the title, type, vendor, tags, collections, option
names and values, and the start of the description with its HTML removed (the first
:data:`DOCUMENT_CHARS` characters of it all); the tsvector weighs the
title most (A), then type, vendor, tags and collections (B), options (C), description (D).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from typing import Any

import procrastinate.exceptions
from sqlalchemy import Row, bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.analytics import embedding_usage
from cybergine.catalog.shape import DEFAULT_OPTION, DEFAULT_VARIANT_TITLE
from cybergine.db.engine import Database
from cybergine.job_names import JobName
from cybergine.knowledge.embeddings import EmbeddingProvider
from cybergine.knowledge.embeddings.base import metering
from cybergine.knowledge.models import TEXT_SEARCH_CONFIG
from cybergine.knowledge.search import vector_literal
from cybergine.queue import defer

# How much of a product's text is embedded: its title, type, vendor, tags, collections
# and options come first, then the start of its description (the lexical half indexes the
# whole description anyway). The local model's cost grows faster than the text: on this
# 2-core machine 2,000 characters (cut at its 256 word pieces) embed at ~31 texts/s,
# 500 characters (~100 word pieces) at ~85-160, so a 10,000-product shop is searchable
# by meaning in about a minute rather than five.
DOCUMENT_CHARS = 500
EMBED_BATCH = 128
# Shopify's placeholder option of a product without options: not a real value.
_DEFAULT_OPTION = (
    f"o.name = '{DEFAULT_OPTION}' AND o.values = ARRAY['{DEFAULT_VARIANT_TITLE}']::varchar[]"
)

# Whether a variant can be ordered now: the SQL twin of ``catalog.models.Variant.available``
# (search filters on it and shows it on cards).
AVAILABLE_SQL = (
    "(v.inventory_quantity IS NULL OR v.inventory_quantity > 0 OR v.inventory_policy = 'continue')"
)

# A variant's value of the option ``o``.
_VARIANT_OPTION = (
    "CASE o.position WHEN 1 THEN v.option1 WHEN 2 THEN v.option2 WHEN 3 THEN v.option3 END"
)

# HTML to text: tags become spaces, the entities shops' editors write become characters.
_PLAIN_DESCRIPTION = r"""
    btrim(regexp_replace(
        replace(replace(replace(replace(replace(replace(
            regexp_replace(p.body_html, '<[^>]*>', ' ', 'g'),
            '&nbsp;', ' '), '&lt;', '<'), '&gt;', '>'), '&quot;', '"'), '&#39;', ''''),
            '&amp;', '&'),
        '\s+', ' ', 'g'))
"""

_REFRESH_SQL = f"""
WITH parts AS (
    SELECT p.id, p.organisation_id,
           p.status = 'active' AND p.published AS visible,
           p.title,
           concat_ws(' ', nullif(p.product_type, ''), nullif(p.vendor, ''),
                     nullif(array_to_string(p.tags, ', '), ''), cols.titles) AS facets,
           opts.text AS options,
           coalesce(opts.option_values, ARRAY[]::varchar[]) AS option_values,
           p.currency, prices.min_price, prices.max_price,
           coalesce(prices.available, false) AS available,
           coalesce(prices.variants, '[]'::jsonb) AS variants,
           {_PLAIN_DESCRIPTION} AS description
    FROM catalog_products p
    LEFT JOIN LATERAL (
        SELECT string_agg(c.title, ', ' ORDER BY c.title) AS titles
        FROM catalog_collection_products m
        JOIN catalog_collections c ON c.id = m.collection_id
        WHERE m.product_id = p.id
    ) cols ON true
    -- Option names and values are kept lower-cased (``search.option_key`` is the twin
    -- that questions and filters are compared through).
    LEFT JOIN LATERAL (
        SELECT string_agg(o.name || ': ' || array_to_string(o.values, ', '), '; '
                          ORDER BY o.position) AS text,
               (SELECT array_agg(DISTINCT lower(v))
                FROM catalog_product_options o2, unnest(o2.values) v
                WHERE o2.product_id = p.id
                  AND NOT ({_DEFAULT_OPTION.replace("o.", "o2.")})
               ) AS option_values
        FROM catalog_product_options o
        WHERE o.product_id = p.id AND NOT ({_DEFAULT_OPTION})
    ) opts ON true
    LEFT JOIN LATERAL (
        SELECT min(v.price) AS min_price, max(v.price) AS max_price,
               bool_or({AVAILABLE_SQL}) AS available,
               jsonb_agg(jsonb_build_object(
                   'id', v.id, 'title', v.title, 'p', v.price, 'price', v.price::text,
                   'compare_at', v.compare_at_price::text, 'c', v.currency,
                   'a', {AVAILABLE_SQL},
                   'image', coalesce(
                       (SELECT i.src FROM catalog_images i WHERE i.id = v.image_id),
                       (SELECT i.src FROM catalog_images i WHERE i.product_id = p.id
                        ORDER BY i.position LIMIT 1)),
                   'o', (SELECT coalesce(jsonb_agg(jsonb_build_object(
                                     'n', lower(o.name), 'v', lower({_VARIANT_OPTION}))),
                                 '[]'::jsonb)
                         FROM catalog_product_options o
                         WHERE o.product_id = p.id AND {_VARIANT_OPTION} IS NOT NULL)
               ) ORDER BY v.position) AS variants
        FROM catalog_variants v WHERE v.product_id = p.id
    ) prices ON true
    WHERE p.organisation_id = :organisation_id AND p.id = ANY(:product_ids)
),
documents AS (
    SELECT parts.*,
           left(concat_ws('. ', title, nullif(facets, ''), options, nullif(description, '')),
                {DOCUMENT_CHARS}) AS document
    FROM parts
)
INSERT INTO catalog_product_search AS s
    (id, organisation_id, product_id, visible, document, document_hash, tsv, option_values,
     currency, min_price, max_price, available, variants)
SELECT id, organisation_id, id, visible, document, md5(document),
       setweight(to_tsvector('{TEXT_SEARCH_CONFIG}', title), 'A')
       || setweight(to_tsvector('{TEXT_SEARCH_CONFIG}', facets), 'B')
       || setweight(to_tsvector('{TEXT_SEARCH_CONFIG}', coalesce(options, '')), 'C')
       || setweight(to_tsvector('{TEXT_SEARCH_CONFIG}', description), 'D'),
       option_values, currency, min_price, max_price, available, variants
FROM documents
ON CONFLICT (product_id) DO UPDATE SET
    visible = excluded.visible,
    document = excluded.document,
    document_hash = excluded.document_hash,
    tsv = excluded.tsv,
    option_values = excluded.option_values,
    currency = excluded.currency,
    min_price = excluded.min_price,
    max_price = excluded.max_price,
    available = excluded.available,
    variants = excluded.variants,
    embedding = CASE WHEN s.document_hash = excluded.document_hash THEN s.embedding END,
    embedding_model = CASE WHEN s.document_hash = excluded.document_hash
                           THEN s.embedding_model END,
    updated_at = now()
-- An unchanged product keeps its row as it is: rewriting it would add a version of the
-- row to every index, the HNSW graph's included (a re-sync of a whole shop).
WHERE (s.visible, s.document_hash, s.tsv, s.option_values, s.currency, s.min_price,
       s.max_price, s.available, s.variants)
      IS DISTINCT FROM
      (excluded.visible, excluded.document_hash, excluded.tsv, excluded.option_values,
       excluded.currency, excluded.min_price, excluded.max_price, excluded.available,
       excluded.variants)
RETURNING visible AND embedding IS NULL
"""  # noqa: S608

_REFRESH = text(_REFRESH_SQL).bindparams(bindparam("product_ids", type_=ARRAY(UUID(as_uuid=True))))

_PENDING = text(
    """
    SELECT id, document, document_hash FROM catalog_product_search
    WHERE organisation_id = :organisation_id AND visible
      AND (embedding IS NULL OR embedding_model IS DISTINCT FROM :model)
      AND (CAST(:after AS uuid) IS NULL OR id > CAST(:after AS uuid))
    ORDER BY id
    LIMIT :batch
    """
)

# A vector is stored only if the text it was made from is still the product's.
_STORE = text(
    """
    UPDATE catalog_product_search s
    SET embedding = CAST(v.embedding AS vector), embedding_model = :model
    FROM unnest(CAST(:ids AS uuid[]), CAST(:hashes AS text[]), CAST(:vectors AS text[]))
         AS v(id, document_hash, embedding)
    WHERE s.id = v.id AND s.document_hash = v.document_hash
    """
)


def embed_lock(organisation_id: uuid.UUID) -> str:
    return f"catalog-embed:{organisation_id}"


async def refresh(
    session: AsyncSession, organisation_id: uuid.UUID, product_ids: Sequence[uuid.UUID]
) -> bool:
    """Recompute the search rows of these products (in the caller's transaction); True
    when one of them now waits for its embedding (call :func:`schedule_embedding`)."""
    if not product_ids:
        return False
    result = await session.execute(
        _REFRESH, {"organisation_id": organisation_id, "product_ids": list(product_ids)}
    )
    return any(pending for (pending,) in result.all())


async def schedule_embedding(session: AsyncSession, organisation_id: uuid.UUID) -> None:
    """Queue the organisation's embedding job, unless one is already waiting (it will
    embed these products too: it takes every row without a current vector). The one
    queued while another runs waits for it (``lock``): two at once would take the same
    rows and embed each product twice."""
    try:
        # A savepoint: the refused insert must not abort the caller's transaction.
        async with session.begin_nested():
            await defer(
                session,
                JobName.EMBED_PRODUCTS,
                queueing_lock=embed_lock(organisation_id),
                lock=embed_lock(organisation_id),
                organisation_id=str(organisation_id),
            )
    except procrastinate.exceptions.AlreadyEnqueued:
        pass


async def products_changed(
    session: AsyncSession, organisation_id: uuid.UUID, product_ids: Sequence[uuid.UUID]
) -> None:
    """What every write of products calls: their search rows now, their vectors soon."""
    if await refresh(session, organisation_id, product_ids):
        await schedule_embedding(session, organisation_id)


async def refresh_organisation(session: AsyncSession, organisation_id: uuid.UUID) -> None:
    """Every product of the organisation (a collection renamed, an index rebuilt)."""
    ids = list(
        await session.scalars(
            text("SELECT id FROM catalog_products WHERE organisation_id = :o"),
            {"o": organisation_id},
        )
    )
    await products_changed(session, organisation_id, ids)


async def embed_pending(
    database: Database,
    organisation_id: uuid.UUID,
    provider: EmbeddingProvider | None,
    *,
    batch: int = EMBED_BATCH,
) -> int:
    """Embed the organisation's visible products without a vector of ``provider``'s
    model, in one pass over them by id, ``batch`` at a time, no transaction open while
    the model works; the number embedded. A product written during the pass behind its
    position is left to the job its write deferred. Without a provider (lexical-only
    mode) there is nothing to do.

    A batch's vectors are stored while the next batch is embedded: storing them updates
    every index of the search rows (the words' GIN indexes included: an update that
    changes an indexed column cannot be HOT) on one PostgreSQL core while the model
    waited. Overlapped, a full sync's products were embedded at 109-112 a second after
    its run, against 100-102 in turn (bench/shopify.py, sync section, alternating runs
    on two cores)."""
    if provider is None:
        return 0
    done = 0
    after: uuid.UUID | None = None
    storing: asyncio.Task[None] | None = None
    try:
        while True:
            async with database.autocommit() as session:
                rows = (
                    await session.execute(
                        _PENDING,
                        {
                            "organisation_id": organisation_id,
                            "model": provider.name,
                            "batch": batch,
                            "after": after,
                        },
                    )
                ).all()
            if not rows:
                return done
            after = rows[-1].id
            with metering() as usage:
                vectors = await provider.embed([row.document for row in rows], kind="document")
            await embedding_usage.record_apart(
                database, organisation_id, usage, purpose=embedding_usage.Purpose.PRODUCTS
            )
            if storing is not None:
                await storing
            storing = asyncio.ensure_future(_store(database, provider.name, rows, vectors))
            done += len(rows)
            if len(rows) < batch:
                return done
    finally:
        if storing is not None:
            await storing


async def _store(
    database: Database, model: str, rows: Sequence[Row[Any]], vectors: Sequence[Sequence[float]]
) -> None:
    async with database.transaction() as session:
        await session.execute(
            _STORE,
            {
                "ids": [row.id for row in rows],
                "hashes": [row.document_hash for row in rows],
                "vectors": [vector_literal(v) for v in vectors],
                "model": model,
            },
        )
