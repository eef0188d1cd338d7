"""Processing a stored webhook delivery: its topic's handler (``webhook_handlers``), run
once in the job's transaction, and the delivery's status with it.

A handler that raises rolls back everything it did; the failure (the attempt, the kind
of error) is written in a transaction of its own, so it survives the rollback, and the
job is retried. A delivery is processed at most once: a job run that finds it no longer
``received`` (done by an earlier run) does nothing.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.db.engine import Database
from cybergine.errors import CybergineError
from cybergine.shopify.models import (
    WEBHOOK_ERROR_LENGTH,
    DeliveryStatus,
    ShopifyShop,
    ShopStatus,
    WebhookDelivery,
)
from cybergine.shopify.webhook_handlers import RUN_AFTER_UNINSTALL, handler_for

log = structlog.get_logger(__name__)


async def process(
    database: Database, delivery_id: uuid.UUID, *, last_attempt: bool
) -> DeliveryStatus | None:
    """Run the delivery's handler; its new status (None: nothing to do any more)."""
    try:
        async with database.transaction() as session:
            return await _process(session, delivery_id)
    except Exception as error:
        async with database.transaction() as session:
            await _record_failure(session, delivery_id, error, final=last_attempt)
        raise


async def _process(session: AsyncSession, delivery_id: uuid.UUID) -> DeliveryStatus | None:
    row = (
        await session.execute(
            select(
                WebhookDelivery.topic,
                WebhookDelivery.webhook_id,
                WebhookDelivery.payload,
                WebhookDelivery.shop_id,
            )
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.status == DeliveryStatus.RECEIVED,
            )
            .with_for_update()
        )
    ).one_or_none()
    if row is None:
        return None  # pruned, erased with its shop, or processed by an earlier run
    shop = await session.get(ShopifyShop, row.shop_id)
    handler = handler_for(row.topic)
    runs = handler is not None and shop is not None
    if shop is not None and shop.status is ShopStatus.UNINSTALLED:
        runs = runs and row.topic in RUN_AFTER_UNINSTALL
    status = DeliveryStatus.PROCESSED if runs else DeliveryStatus.IGNORED
    if runs and handler is not None and shop is not None:
        await handler(session, shop, row.topic, dict(row.payload), row.webhook_id)
    # An UPDATE, not the ORM: after shop/redact the row is gone with its organisation.
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id == delivery_id)
        .values(
            status=status,
            attempts=WebhookDelivery.attempts + 1,
            error=None,
            processed_at=datetime.now(UTC),
        )
        .execution_options(synchronize_session=False)
    )
    log.info("shopify webhook processed", topic=row.topic, status=status.value)
    return status


async def _record_failure(
    session: AsyncSession, delivery_id: uuid.UUID, error: Exception, *, final: bool
) -> None:
    log.exception("shopify webhook handler failed", delivery_id=str(delivery_id))
    values: dict[str, object] = {
        "attempts": WebhookDelivery.attempts + 1,
        "error": _described(error),
    }
    if final:
        values["status"] = DeliveryStatus.FAILED
        values["processed_at"] = datetime.now(UTC)
    await session.execute(
        update(WebhookDelivery)
        .where(
            WebhookDelivery.id == delivery_id,
            WebhookDelivery.status == DeliveryStatus.RECEIVED,
        )
        .values(values)
        .execution_options(synchronize_session=False)
    )


def _described(error: Exception) -> str:
    """The kind of failure; our own errors' details, which name no one, but never the
    message of another exception, which may quote the payload."""
    text = type(error).__name__
    if isinstance(error, CybergineError):
        text = f"{text}: {error.detail}"
    return text[:WEBHOOK_ERROR_LENGTH]
