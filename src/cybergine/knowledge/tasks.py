"""Jobs of the knowledge base."""

from __future__ import annotations

import uuid

import procrastinate
from sqlalchemy import select

from cybergine.accounts import grace
from cybergine.job_names import JobName
from cybergine.knowledge import indexing
from cybergine.knowledge.models import Item
from cybergine.knowledge.providers import embedding_provider, extraction_processes
from cybergine.queue import DATABASE_CONTEXT_KEY, DEFAULT_RETRY, job_settings

blueprint = procrastinate.Blueprint()


@blueprint.task(name=JobName.INDEX_KNOWLEDGE_ITEM.task, pass_context=True, retry=DEFAULT_RETRY)
async def index_item(context: procrastinate.JobContext, item_id: str, version: int) -> bool:
    """Chunk and embed one document or Q&A pair. Superseded versions are skipped, and so
    are the items of an organisation that is closing or hidden (policy §11: no work for
    it; ``accounts.resumed_work`` queues the item again if it becomes active)."""
    database = context.additional_context[DATABASE_CONTEXT_KEY]
    async with database.autocommit() as session:
        organisation_id = await session.scalar(
            select(Item.organisation_id).where(Item.id == uuid.UUID(item_id))
        )
        if organisation_id is None or not await grace.accepting_work(session, organisation_id):
            return False
    settings = job_settings(context)
    return await indexing.index_item(
        database,
        uuid.UUID(item_id),
        version,
        embedding_provider(settings),
        extraction_processes(settings),
    )
