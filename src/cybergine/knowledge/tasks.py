"""Jobs of the knowledge base."""

from __future__ import annotations

import uuid

import procrastinate

from cybergine.job_names import JobName
from cybergine.knowledge import indexing
from cybergine.knowledge.providers import embedding_provider, extraction_processes
from cybergine.queue import DATABASE_CONTEXT_KEY, DEFAULT_RETRY, job_settings

blueprint = procrastinate.Blueprint()


@blueprint.task(name=JobName.INDEX_KNOWLEDGE_ITEM.task, pass_context=True, retry=DEFAULT_RETRY)
async def index_item(context: procrastinate.JobContext, item_id: str, version: int) -> bool:
    """Chunk and embed one document or Q&A pair. Superseded versions are skipped."""
    database = context.additional_context[DATABASE_CONTEXT_KEY]
    settings = job_settings(context)
    return await indexing.index_item(
        database,
        uuid.UUID(item_id),
        version,
        embedding_provider(settings),
        extraction_processes(settings),
    )
