"""What the dashboard, the API and the embedded admin show of a shop's sync: its latest
run (and the last completed one when the latest is not), its errors, the catalogue's size,
and requesting a run ("Sync now")."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.catalog.models import Product
from cybergine.db.tenancy import TenantScope
from cybergine.errors import NotFound
from cybergine.privacy import audit
from cybergine.shopify import sync
from cybergine.shopify.models import ShopifyShop, ShopStatus
from cybergine.shopify.sync_models import KEPT_RUNS, ShopifySyncRun, SyncKind, SyncStatus


async def shop_of(session: AsyncSession, organisation_id: uuid.UUID) -> ShopifyShop | None:
    """The organisation's installed Shopify shop, if it has one."""
    return await session.scalar(
        TenantScope(session, organisation_id)
        .select(ShopifyShop)
        .where(ShopifyShop.status == ShopStatus.INSTALLED)
        .order_by(ShopifyShop.created_at.desc())
        .limit(1)
    )


async def request_now(
    session: AsyncSession, organisation_id: uuid.UUID, actor: audit.Actor
) -> ShopifySyncRun:
    """A full sync of the organisation's shop ("Sync now"), unless one is under way."""
    shop = await shop_of(session, organisation_id)
    if shop is None:
        raise NotFound("This organisation has no connected Shopify shop.")
    run = await sync.request_sync(session, shop, SyncKind.FULL)
    await audit.record(
        session,
        action="shopify.sync_requested",
        actor=actor,
        organisation_id=organisation_id,
        target_type="shopify_shop",
        target_id=str(shop.id),
        details={"run": str(run.id)},
    )
    return run


async def sync_status(session: AsyncSession, shop: ShopifyShop) -> dict[str, Any]:
    """What the dashboard and the embedded admin show of a shop's sync: the latest run
    (and the last completed one when the latest is not), and the catalogue's size."""
    runs = list(
        await session.scalars(
            select(ShopifySyncRun)
            .where(ShopifySyncRun.shop_id == shop.id)
            .order_by(ShopifySyncRun.created_at.desc())
            .limit(KEPT_RUNS)
        )
    )
    latest = runs[0] if runs else None
    completed = next((r for r in runs if r.status is SyncStatus.COMPLETED), None)
    products = await TenantScope(session, shop.organisation_id).count(
        TenantScope(session, shop.organisation_id).select(Product)
    )
    return {
        "shop": shop.shop_domain,
        "connected": shop.status == ShopStatus.INSTALLED and shop.access_token is not None,
        "products": products,
        "latest": describe(latest) if latest else None,
        "last_completed": describe(completed) if completed else None,
        "running": latest is not None and not latest.status.finished,
    }


def describe(run: ShopifySyncRun) -> dict[str, Any]:
    return {
        "id": str(run.id),
        "kind": run.kind.value,
        "status": run.status.value,
        "requested_at": run.created_at.isoformat() if run.created_at else None,
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "object_count": run.object_count,
        "lines_applied": run.lines_applied,
        "products_written": run.products_written,
        "products_failed": run.products_failed,
        "products_deleted": run.products_deleted,
        "documents_written": run.documents_written,
        "documents_removed": run.documents_removed,
        "error": run.error,
        "errors": list(run.errors or []),
    }
