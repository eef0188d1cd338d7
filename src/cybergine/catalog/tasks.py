"""Jobs of the catalogue."""

from __future__ import annotations

import uuid

import procrastinate

from cybergine.accounts import grace
from cybergine.catalog import search_index
from cybergine.job_names import JobName
from cybergine.knowledge.providers import embedding_provider
from cybergine.queue import DATABASE_CONTEXT_KEY, DEFAULT_RETRY, job_settings

blueprint = procrastinate.Blueprint()


@blueprint.task(name=JobName.EMBED_PRODUCTS.task, pass_context=True, retry=DEFAULT_RETRY)
async def embed_products(context: procrastinate.JobContext, organisation_id: str) -> int:
    """Embed the organisation's products whose text changed, in batches; nothing for an
    organisation that is closing or hidden (policy §11: ``accounts.resumed_work`` queues
    the job again if it becomes active)."""
    database = context.additional_context[DATABASE_CONTEXT_KEY]
    async with database.autocommit() as session:
        if not await grace.accepting_work(session, uuid.UUID(organisation_id)):
            return 0
    return await search_index.embed_pending(
        database, uuid.UUID(organisation_id), embedding_provider(job_settings(context))
    )
