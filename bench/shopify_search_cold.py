"""The first product searches of a fresh process, for bench/shopify.py's search section.

A process of its own, started as ``cybergine serve`` and ``cybergine worker`` start: its
start-up warm-up (``cybergine.catalog.warm_up``: the query-embedding model loaded, pool
connections with the search statements prepared) runs and is timed apart, then its first
``queries`` searches (hybrid, with filters, query embedding included) are timed one by
one. That is what a process's first customers see once it reports ready; the warm-up's
own time is what its start takes longer.

Usage (by bench/shopify.py): python bench/shopify_search_cold.py URL ORGANISATION QUERIES
Prints one JSON object: {"startup_s": ..., "latencies_ms": [...], "empty": ...}.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import uuid

from cybergine.catalog.search import search_products
from cybergine.catalog.warm_up import warm_up
from cybergine.db.engine import Database
from cybergine.knowledge.embeddings import LocalMiniLM
from cybergine.settings import Settings
from shopify import queries


async def main(url: str, organisation_id: uuid.UUID, count: int) -> None:
    started = time.perf_counter()
    database = Database(url, pool_size=4)
    provider = LocalMiniLM()
    # As a process started with the default settings does.
    warm = Settings.model_fields["search_warm_connections"].default
    await warm_up(database, provider, connections=warm)
    startup = time.perf_counter() - started
    latencies, empty = [], 0
    async with database.autocommit() as session:
        for words, filters in queries(count):
            began = time.perf_counter()
            hits = await search_products(
                session, organisation_id, words, filters, provider=provider, k=5
            )
            latencies.append((time.perf_counter() - began) * 1000)
            empty += not hits
    await database.dispose()
    print(json.dumps({"startup_s": startup, "latencies_ms": latencies, "empty": empty}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], uuid.UUID(sys.argv[2]), int(sys.argv[3])))
