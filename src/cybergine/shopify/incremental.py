"""The catalogue kept in step between full syncs, by the shop's product and collection
webhooks, and the end of a bulk operation.

Webhook payloads are REST-shaped, read by the same ``catalog.shape.read_product`` as the
API and the CSV import, and written by the same ``catalog.batch.write_products`` as the
full sync. Shopify does not promise delivery order, so each write compares the
payload's ``updated_at`` with the version last applied (``sync.newer_versions``): an
older payload arriving after a newer one, or after the product's deletion, changes
nothing. A deletion is dated by ``X-Shopify-Triggered-At`` (the stored delivery's
``triggered_at``). Handlers of one object take a transaction-scoped advisory lock, so
two deliveries of the same product never interleave their check and their write.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.catalog import batch
from cybergine.catalog.models import Product
from cybergine.catalog.shape import read_product
from cybergine.db.tenancy import TenantScope
from cybergine.errors import InvalidInput
from cybergine.shopify import sync
from cybergine.shopify.bulk_jsonl import listed_as
from cybergine.shopify.models import ShopifyShop, WebhookDelivery
from cybergine.shopify.sync_models import ShopifySyncRun, SourceKind

log = structlog.get_logger(__name__)

PRODUCTS_CREATE = "products/create"
PRODUCTS_UPDATE = "products/update"
PRODUCTS_DELETE = "products/delete"
COLLECTIONS_CREATE = "collections/create"
COLLECTIONS_UPDATE = "collections/update"
COLLECTIONS_DELETE = "collections/delete"
BULK_OPERATIONS_FINISH = "bulk_operations/finish"


async def _lock(
    session: AsyncSession, shop: ShopifyShop, kind: SourceKind, external_id: str
) -> None:
    await sync.lock_objects(session, shop.id, kind, [external_id])


async def _triggered_at(session: AsyncSession, shop: ShopifyShop, webhook_id: str) -> datetime:
    moment = await session.scalar(
        select(WebhookDelivery.triggered_at).where(
            WebhookDelivery.shop_id == shop.id, WebhookDelivery.webhook_id == webhook_id
        )
    )
    return moment or datetime.now(UTC)


async def shop_currency(session: AsyncSession, shop: ShopifyShop) -> str:
    """The currency the shop's last sync found (REST product payloads carry none)."""
    found = await session.scalar(
        select(ShopifySyncRun.currency)
        .where(ShopifySyncRun.shop_id == shop.id, ShopifySyncRun.currency.is_not(None))
        .order_by(ShopifySyncRun.created_at.desc())
        .limit(1)
    )
    if found:
        return found
    held = await session.scalar(
        select(Product.currency).where(Product.organisation_id == shop.organisation_id).limit(1)
    )
    return held or "USD"


def _external_id(payload: dict[str, Any]) -> str:
    raw = payload.get("id")
    if isinstance(raw, bool) or not isinstance(raw, int | str) or not str(raw).strip():
        raise InvalidInput("The webhook's payload has no object id.", field="id")
    return str(raw).strip()


async def handle_product_upsert(
    session: AsyncSession, shop: ShopifyShop, topic: str, payload: dict[str, Any], webhook_id: str
) -> None:
    external_id = _external_id(payload)
    await _lock(session, shop, SourceKind.PRODUCT, external_id)
    moment = sync.parse_time(payload.get("updated_at")) or await _triggered_at(
        session, shop, webhook_id
    )
    if await sync.newer_versions(session, shop.id, SourceKind.PRODUCT, {external_id: moment}):
        log.info("shopify product webhook older than held", topic=topic, webhook_id=webhook_id)
        return
    data = listed_as({**payload, "currency": await shop_currency(session, shop)})
    data.pop("collections", None)  # product webhooks carry none: keep the memberships
    try:
        draft = read_product(data)
    except InvalidInput as exc:
        # Retrying cannot make the payload valid: the next full sync reports it.
        log.warning("shopify product refused", webhook_id=webhook_id, error=exc.detail)
        return
    scope = TenantScope(session, shop.organisation_id)
    await batch.write_products(scope, sync.SYNC_ACTOR, [draft])
    await sync.record_versions(session, shop, SourceKind.PRODUCT, {external_id: moment})


async def handle_product_delete(
    session: AsyncSession, shop: ShopifyShop, topic: str, payload: dict[str, Any], webhook_id: str
) -> None:
    external_id = _external_id(payload)
    await _lock(session, shop, SourceKind.PRODUCT, external_id)
    moment = await _triggered_at(session, shop, webhook_id)
    scope = TenantScope(session, shop.organisation_id)
    await batch.delete_products_by_external_id(scope, sync.SYNC_ACTOR, [external_id])
    await sync.record_versions(
        session, shop, SourceKind.PRODUCT, {external_id: moment}, deleted=True
    )


async def handle_collection_upsert(
    session: AsyncSession, shop: ShopifyShop, topic: str, payload: dict[str, Any], webhook_id: str
) -> None:
    external_id = _external_id(payload)
    await _lock(session, shop, SourceKind.COLLECTION, external_id)
    moment = sync.parse_time(payload.get("updated_at")) or await _triggered_at(
        session, shop, webhook_id
    )
    if await sync.newer_versions(session, shop.id, SourceKind.COLLECTION, {external_id: moment}):
        return
    scope = TenantScope(session, shop.organisation_id)
    try:
        await batch.write_collection(
            scope,
            external_id=external_id,
            handle=str(payload.get("handle") or ""),
            title=str(payload.get("title") or ""),
        )
    except InvalidInput as exc:
        log.warning("shopify collection refused", webhook_id=webhook_id, error=exc.detail)
        return
    await sync.record_versions(session, shop, SourceKind.COLLECTION, {external_id: moment})


async def handle_collection_delete(
    session: AsyncSession, shop: ShopifyShop, topic: str, payload: dict[str, Any], webhook_id: str
) -> None:
    external_id = _external_id(payload)
    await _lock(session, shop, SourceKind.COLLECTION, external_id)
    moment = await _triggered_at(session, shop, webhook_id)
    await batch.delete_collection_by_external_id(
        TenantScope(session, shop.organisation_id), external_id
    )
    await sync.record_versions(
        session, shop, SourceKind.COLLECTION, {external_id: moment}, deleted=True
    )


async def handle_bulk_operation_finish(
    session: AsyncSession, shop: ShopifyShop, topic: str, payload: dict[str, Any], webhook_id: str
) -> None:
    """The run waiting for this operation goes on now rather than at its next look."""
    gid = payload.get("admin_graphql_api_id")
    if isinstance(gid, str) and gid:
        await sync.wake_for_bulk_operation(session, shop, gid)
