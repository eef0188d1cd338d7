"""No background work for an organisation that is not active (policy §11): during its
deletion grace period, and once its Shopify shop uninstalled the app, the jobs that
index its knowledge and embed its products end at once, successfully, without
embedding anything and without being queued again; when the organisation is active
again (the deletion cancelled, the app reinstalled), what they skipped is queued and
done."""

from __future__ import annotations

import uuid
from datetime import timedelta

from sqlalchemy import func, select, text

from cybergine.accounts.resumed_work import resume_background_work
from cybergine.accounts.service import organisations
from cybergine.catalog import search_index
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.knowledge import service as knowledge
from cybergine.knowledge.models import Chunk, Item, ItemStatus
from cybergine.settings import Settings
from tests.support.catalog import SHOES, add_products, principal_of
from tests.support.factories import make_organisation
from tests.support.jobs import run_jobs


async def _jobs(database: Database, task: str) -> list[str]:
    """The statuses of the jobs of ``task`` (``namespace:name``), oldest first."""
    async with database.autocommit() as session:
        return list(
            await session.scalars(
                text(
                    "SELECT status::text FROM procrastinate_jobs WHERE task_name = :t ORDER BY id"
                ),
                {"t": task},
            )
        )


async def _item(database: Database, item_id: uuid.UUID) -> tuple[ItemStatus, int]:
    async with database.autocommit() as session:
        item = await session.get(Item, item_id)
        assert item is not None
        chunks = await session.scalar(
            select(func.count()).select_from(Chunk).where(Chunk.item_id == item_id)
        )
    return item.status, int(chunks or 0)


async def _embedded(database: Database, organisation_id: uuid.UUID) -> int:
    async with database.autocommit() as session:
        found = await session.scalar(
            text(
                "SELECT count(*) FROM catalog_product_search"
                " WHERE organisation_id = :o AND embedding IS NOT NULL"
            ),
            {"o": organisation_id},
        )
    return int(found or 0)


async def test_knowledge_is_not_indexed_during_the_deletion_grace_period(
    database: Database, settings: Settings
) -> None:
    organisation, _ = await make_organisation(database, name="Closing")
    async with database.transaction() as session:
        item = await knowledge.create_qa(
            TenantScope(session, organisation.id),
            question="Do you ship to Canada?",
            answer="Yes, in five days.",
        )
        await organisations.schedule_deletion(session, organisation.id, grace=timedelta(days=30))
    await run_jobs(database, settings)
    assert await _jobs(database, "knowledge:index_item") == ["succeeded"]
    assert await _item(database, item.id) == (ItemStatus.PENDING, 0)
    await run_jobs(database, settings)  # nothing was queued again
    assert await _jobs(database, "knowledge:index_item") == ["succeeded"]

    async with database.transaction() as session:
        await organisations.cancel_deletion(session, organisation.id)
        assert await resume_background_work(session, organisation.id) == 1
    await run_jobs(database, settings)
    status, chunks = await _item(database, item.id)
    assert status is ItemStatus.READY
    assert chunks > 0


async def test_products_are_not_embedded_after_the_shop_uninstalled_the_app(
    database: Database, settings: Settings
) -> None:
    organisation, owner = await make_organisation(database, name="Uninstalled")
    principal = principal_of(organisation.id, owner.id, owner.email)
    await add_products(database, principal, {"fit": SHOES["fit"], "road": SHOES["road"]})
    async with database.transaction() as session:
        await organisations.hide_for_uninstalled_shop(session, organisation.id)
    await run_jobs(database, settings)
    assert await _jobs(database, "catalog:embed_products") == ["succeeded"]
    assert await _embedded(database, organisation.id) == 0
    await run_jobs(database, settings)
    assert await _jobs(database, "catalog:embed_products") == ["succeeded"]

    async with database.transaction() as session:
        await organisations.show_reinstalled_shop(session, organisation.id)
        assert await resume_background_work(session, organisation.id) == 0
    await run_jobs(database, settings)
    assert await _embedded(database, organisation.id) == 2
    async with database.autocommit() as session:
        # Nothing is left waiting for the organisation.
        waiting = await session.scalar(
            text(
                "SELECT count(*) FROM procrastinate_jobs WHERE status = 'todo'"
                " AND queueing_lock = :lock"
            ),
            {"lock": search_index.embed_lock(organisation.id)},
        )
    assert waiting == 0
