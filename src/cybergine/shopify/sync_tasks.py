"""Jobs of the sync from Shopify: advancing a run, and refreshing each shop's content on
a schedule (Shopify sends no webhook for pages, articles or policies)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import procrastinate
from sqlalchemy import func, select

from cybergine.job_names import JobName
from cybergine.queue import DATABASE_CONTEXT_KEY, DEFAULT_RETRY, job_session, job_settings
from cybergine.shopify import sync, tokens
from cybergine.shopify.models import ShopifyShop, ShopStatus
from cybergine.shopify.sync_models import ShopifySyncRun, SyncKind, SyncStatus

blueprint = procrastinate.Blueprint()


@blueprint.task(name=JobName.SHOPIFY_SYNC.task, pass_context=True, retry=DEFAULT_RETRY)
async def sync_shop(context: procrastinate.JobContext, run_id: str, shop_id: str = "") -> None:
    """One step or more of a run; it defers itself again while Shopify works."""
    database = context.additional_context[DATABASE_CONTEXT_KEY]
    settings = job_settings(context)

    async def token(shop: ShopifyShop) -> str:
        return await tokens.access_token(database, shop, settings)

    await sync.advance(database, settings, uuid.UUID(run_id), token=token)


@blueprint.periodic(cron="41 * * * *", periodic_id="refresh_shopify_content")
@blueprint.task(name="refresh_content", pass_context=True, queueing_lock="refresh_shopify_content")
async def refresh_content(context: procrastinate.JobContext, timestamp: int) -> int:
    """A content run for every connected shop whose content was last synced longer ago
    than ``shopify_content_refresh_hours``; the number of runs requested."""
    hours = job_settings(context).shopify_content_refresh_hours
    if hours <= 0:
        return 0
    due_before = datetime.now(UTC) - timedelta(hours=hours)
    last = (
        select(func.max(ShopifySyncRun.finished_at))
        .where(
            ShopifySyncRun.shop_id == ShopifyShop.id,
            ShopifySyncRun.status == SyncStatus.COMPLETED,
        )
        .scalar_subquery()
    )
    async with job_session(context) as session:
        shops = list(
            await session.scalars(
                select(ShopifyShop).where(
                    ShopifyShop.status == ShopStatus.INSTALLED,
                    ShopifyShop.access_token.is_not(None),
                    func.coalesce(last, datetime(1970, 1, 1, tzinfo=UTC)) < due_before,
                )
            )
        )
        for shop in shops:
            await sync.request_sync(session, shop, SyncKind.CONTENT)
    return len(shops)
