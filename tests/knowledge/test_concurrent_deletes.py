"""A collection deleted while the indexing job writes one of its documents' chunks: the
job locks the item, then (deleting the old chunks) the organisation's index statistics,
then (inserting the new ones) the collection's key. A delete that locked the collection
first and waited for the item deadlocked with it, and answered 500."""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
from sqlalchemy import delete, func, select, text

from cybergine.db.engine import Database
from cybergine.knowledge.models import Chunk, ChunkKind, Collection, Item
from cybergine.settings import Settings
from tests.support.factories import make_organisation_with_key
from tests.support.jobs import run_jobs
from tests.support.server import LiveServer

TEXT = (
    "Returns are free within 30 days of delivery. Start a return from your order page; "
    "a prepaid label arrives by e-mail and the refund reaches your card in five days."
)


async def _someone_waits_for_a_lock(database: Database, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while True:
        async with database.transaction() as session:
            waiting = await session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND wait_event_type = 'Lock'"
                )
            )
        if waiting:
            return
        assert time.monotonic() < deadline, "the delete never waited for the job's lock"
        await asyncio.sleep(0.02)


async def test_a_collection_deleted_while_its_document_is_indexed_answers_204(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    _, key = await make_organisation_with_key(database)
    headers = {"authorization": f"Bearer {key}"}
    with live_server.client(headers=headers) as api:
        for n in range(2):
            created = api.post(
                "/api/v1/knowledge/documents",
                json={"title": f"Returns {n}", "text": TEXT, "collection": "winter"},
            )
            assert created.status_code == 202, created.text
        await run_jobs(database, settings)
        [winter] = [
            c for c in api.get("/api/v1/knowledge/collections").json() if c["name"] == "winter"
        ]

    def delete_collection() -> int:
        with httpx.Client(base_url=live_server.url, headers=headers, timeout=30) as client:
            url = f"/api/v1/knowledge/collections/{winter['id']}"
            return client.delete(url).status_code

    with ThreadPoolExecutor(max_workers=1) as pool:
        # The indexing job's second transaction (knowledge.indexing.index_item), held open.
        async with database.transaction() as job:
            item = (
                await job.execute(
                    select(Item)
                    .where(Item.collection_id == uuid.UUID(winter["id"]))
                    .order_by(Item.id)
                    .limit(1)
                    .with_for_update()
                )
            ).scalar_one()
            await job.execute(delete(Chunk).where(Chunk.item_id == item.id))
            deleting = pool.submit(delete_collection)
            await _someone_waits_for_a_lock(database)
            job.add(
                Chunk(
                    organisation_id=item.organisation_id,
                    item_id=item.id,
                    collection_id=item.collection_id,
                    kind=ChunkKind.PASSAGE,
                    ordinal=0,
                    text=TEXT,
                )
            )
            await job.flush()
        assert deleting.result(timeout=30) == 204

    async with database.transaction() as session:
        collections = await session.scalar(
            select(func.count()).select_from(Collection).where(Collection.name == "winter")
        )
        chunks = await session.scalar(select(func.count()).select_from(Chunk))
    assert (collections, chunks) == (0, 0)
