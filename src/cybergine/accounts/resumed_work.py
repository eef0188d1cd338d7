"""An organisation active again (its deletion cancelled during the grace period, or its
Shopify shop reinstalled the app) gets back the background work its jobs skipped while
it was not (``accounts.grace.accepting_work``): the indexing of knowledge items still
waiting for it, and the embedding of its products. The knowledge gaps' collection needs
nothing: its mark did not move, so the next sweep collects what waited."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.catalog import search_index
from cybergine.job_names import JobName
from cybergine.knowledge.models import Item, ItemStatus
from cybergine.queue import defer


async def resume_background_work(session: AsyncSession, organisation_id: uuid.UUID) -> int:
    """In the caller's transaction (the one that makes the organisation active): the
    indexing jobs of its items not indexed yet, and one embedding job for its products
    (it embeds only those without a current vector). How many items were queued."""
    waiting = (
        await session.execute(
            select(Item.id, Item.version).where(
                Item.organisation_id == organisation_id,
                Item.status.in_([ItemStatus.PENDING, ItemStatus.PROCESSING]),
            )
        )
    ).all()
    for item_id, version in waiting:
        await defer(session, JobName.INDEX_KNOWLEDGE_ITEM, item_id=str(item_id), version=version)
    await search_index.schedule_embedding(session, organisation_id)
    return len(waiting)
