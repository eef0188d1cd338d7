"""Which code handles each Shopify webhook topic: the one place a topic is wired.

A handler is ``async def handle(session, shop, topic, payload, webhook_id) -> None``. It
runs in the job that processes a stored delivery (``shopify.tasks.process_webhook``),
inside that job's transaction, so what it writes commits with the delivery's new status
or not at all; it may run more than once (a retried job), so it is idempotent. It raises
to have the delivery retried (``queue.DEFAULT_RETRY``); a delivery whose handler failed
on every attempt is marked failed with the error.

A topic with no handler is stored, acknowledged and marked ignored. Deliveries for a
shop that uninstalled the app are ignored too, except for the topics that exist for
exactly that case (``RUN_AFTER_UNINSTALL``): the uninstall itself and Shopify's three
mandatory compliance topics, which arrive after it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.shopify import billing, compliance, incremental, shop_redact, uninstall
from cybergine.shopify.models import ShopifyShop
from cybergine.shopify.topics import (
    APP_UNINSTALLED,
    COMPLIANCE_TOPICS,
    CUSTOMERS_DATA_REQUEST,
    CUSTOMERS_REDACT,
    SHOP_REDACT,
)

Handler = Callable[[AsyncSession, ShopifyShop, str, dict[str, Any], str], Awaitable[None]]

HANDLERS: Mapping[str, Handler] = {
    APP_UNINSTALLED: uninstall.handle_app_uninstalled,
    SHOP_REDACT: shop_redact.handle_shop_redact,
    CUSTOMERS_REDACT: compliance.handle_customers_redact,
    CUSTOMERS_DATA_REQUEST: compliance.handle_customers_data_request,
    incremental.PRODUCTS_CREATE: incremental.handle_product_upsert,
    incremental.PRODUCTS_UPDATE: incremental.handle_product_upsert,
    incremental.PRODUCTS_DELETE: incremental.handle_product_delete,
    incremental.COLLECTIONS_CREATE: incremental.handle_collection_upsert,
    incremental.COLLECTIONS_UPDATE: incremental.handle_collection_upsert,
    incremental.COLLECTIONS_DELETE: incremental.handle_collection_delete,
    incremental.BULK_OPERATIONS_FINISH: incremental.handle_bulk_operation_finish,
    billing.APP_SUBSCRIPTIONS_UPDATE: billing.handle_app_subscription_update,
}

RUN_AFTER_UNINSTALL = frozenset({APP_UNINSTALLED, *COMPLIANCE_TOPICS})


def handler_for(topic: str) -> Handler | None:
    return HANDLERS.get(topic)
