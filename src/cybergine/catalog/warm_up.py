"""Product search made ready before a process serves (``serve`` before it answers,
``cybergine worker`` before it takes a job), so its first searches are as fast as the
ones after.

A fresh process's first product searches would otherwise pay, on top of their own work
(bench/shopify.py, search section, at 100,000 products):

- the local embedding model's load (tokenizer, ONNX session: about a second) and its
  first inference, which sizes onnxruntime's buffers;
- per connection of the pool: the connection itself, its server process's first use of
  the search tables, their indexes, the text-search dictionary and pgvector (catalogue
  caches, a few milliseconds each), and the planning of the search statement at every
  run until psycopg prepares it (at its sixth run on that connection);
- the pages of the HNSW graph's upper layers, which every search walks first.

:func:`warm_up` does that work once, for no organisation (the statements read nothing
of anyone's). It never fails a start: a step that fails is logged and the process
starts anyway, as cold as before. A remote embedding provider is not called (a paid
request at every start): its searches are warmed with a stand-in vector.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Sequence
from decimal import Decimal

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.catalog.search import (
    _VARIANTS,
    OptionFilter,
    ProductFilters,
    _parameters,
    search_products,
)
from cybergine.db.engine import Database
from cybergine.knowledge.embeddings import EmbeddingError, EmbeddingProvider, LocalMiniLM

log = structlog.get_logger(__name__)

# No organisation has it: the statements run and find nothing.
NO_ORGANISATION = uuid.UUID(int=0)
# psycopg prepares a statement at its sixth run on a connection (after prepare_threshold,
# 5, runs unprepared).
RUNS_TO_PREPARE = 6
# Filters of every kind a question has, so the statement runs its whole plan.
_FILTERS = ProductFilters(
    max_price=Decimal(100), currency="EUR", in_stock=True, options=(OptionFilter("42", ("size",)),)
)
_QUERY = "waterproof trail shoes"


async def warm_up(
    database: Database, provider: EmbeddingProvider | None, *, connections: int
) -> float:
    """Load the query-embedding model and make ``connections`` connections of the pool
    ready to search (opened at once, so the pool keeps that many; the pool opens more under
    load, and those pay their first searches' planning); the seconds it took. No
    connections: nothing is done."""
    if connections < 1:
        return 0.0
    started = time.perf_counter()
    vector = await _query_vector(provider)
    try:
        await asyncio.gather(
            *(_warm_connection(database, provider, vector) for _ in range(connections))
        )
    except Exception as error:  # a start is never refused for its warm-up
        log.warning("catalog.warm_up.statements_failed", error=str(error))
    took = time.perf_counter() - started
    log.info("catalog.warm_up.done", seconds=round(took, 3), connections=connections)
    return took


async def _query_vector(provider: EmbeddingProvider | None) -> list[float] | None:
    if provider is None or provider.dimensions < 1:  # words only
        return None
    if not isinstance(provider, LocalMiniLM):
        # A remote model: no request at start-up; a unit vector stands in for a query's.
        return [1.0] + [0.0] * (provider.dimensions - 1)
    try:
        (vector,) = await provider.embed([_QUERY], kind="query")
    except EmbeddingError as error:
        log.warning("catalog.warm_up.model_failed", error=str(error))
        return None
    return vector


async def _warm_connection(
    database: Database, provider: EmbeddingProvider | None, vector: Sequence[float] | None
) -> None:
    async with database.autocommit() as session:
        await warm_statements(session, provider, vector)


async def warm_statements(
    session: AsyncSession,
    provider: EmbeddingProvider | None,
    query_vector: Sequence[float] | None,
) -> None:
    """Every statement of a product search, on ``session``'s connection, as many times as
    it takes to have them prepared there; ``query_vector``: a vector of ``provider``'s
    model (None: words only)."""
    parameters = _parameters(NO_ORGANISATION, _FILTERS)
    for _ in range(RUNS_TO_PREPARE):
        await search_products(
            session,
            NO_ORGANISATION,
            _QUERY,
            _FILTERS,
            provider=provider if query_vector is not None else None,
            query_vector=query_vector,
        )
        # A search that finds nothing never reaches its second statement: run on its own.
        await session.execute(_VARIANTS, {**parameters, "product_ids": []})
