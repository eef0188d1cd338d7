"""A stored delivery's processing: a handler that fails leaves its attempt and the kind of
error on the delivery and is retried, the last attempt marks it failed; processed
deliveries are pruned a few days later, waiting ones after a month."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.db.engine import Database
from cybergine.job_names import JobName
from cybergine.queue import APP, defer
from cybergine.settings import Settings
from cybergine.shopify import deliveries as processing
from cybergine.shopify import webhook_handlers
from cybergine.shopify.models import DeliveryStatus, ShopifyShop, WebhookDelivery
from tests.shopify.webhook_support import (
    connect_shop,
    deliver,
    deliveries,
    shopify_settings,
)
from tests.support.jobs import run_jobs
from tests.support.server import LiveServer

FAILING_TOPIC = "tests/always_fails"
SECRET_IN_PAYLOAD = "jane@example.com"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return shopify_settings(settings)


async def _fails(
    session: AsyncSession, shop: ShopifyShop, topic: str, payload: dict[str, Any], webhook_id: str
) -> None:
    raise RuntimeError(f"could not handle {payload['email']}")


async def test_a_failing_handler_is_retried_then_marked_failed_without_the_payload_in_the_error(
    live_server: LiveServer,
    database: Database,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setitem(webhook_handlers.HANDLERS, FAILING_TOPIC, _fails)  # type: ignore[index]
    connected = await connect_shop(database)
    body = f'{{"email": "{SECRET_IN_PAYLOAD}"}}'.encode()
    assert deliver(live_server.url, body, topic=FAILING_TOPIC, shop=connected.domain).is_success
    await run_jobs(database, settings)
    (delivery,) = await deliveries(database)
    assert delivery.status is DeliveryStatus.RECEIVED
    # The first retry comes a second or two later: on a slow machine the worker, still
    # busy with the install's own jobs, may have run it before it stopped.
    tries = delivery.attempts
    assert tries in (1, 2)
    assert delivery.error == "RuntimeError"
    async with database.transaction() as session:
        retry = await session.scalar(
            text(
                "SELECT status FROM procrastinate_jobs WHERE task_name = :task "
                "AND attempts = :tries AND scheduled_at IS NOT NULL"
            ),
            {"task": JobName.PROCESS_SHOPIFY_WEBHOOK.value, "tries": tries},
        )
    # Retried later, with backoff (a second or two: not "later than now", which a slow
    # machine may already have passed).
    assert retry == "todo"

    with pytest.raises(RuntimeError):
        await processing.process(database, delivery.id, last_attempt=True)
    (failed,) = await deliveries(database)
    assert failed.status is DeliveryStatus.FAILED
    assert failed.attempts == tries + 1
    assert SECRET_IN_PAYLOAD not in (failed.error or "")
    # A failed delivery is not processed again.
    assert await processing.process(database, delivery.id, last_attempt=False) is None


async def test_processed_deliveries_are_pruned_after_three_days_waiting_ones_after_a_month(
    database: Database, settings: Settings
) -> None:
    connected = await connect_shop(database)
    now = datetime.now(UTC)
    ages = {
        "processed long ago": (DeliveryStatus.PROCESSED, now - timedelta(days=4), 4),
        "processed just now": (DeliveryStatus.PROCESSED, now, 0),
        "ignored long ago": (DeliveryStatus.IGNORED, now - timedelta(days=4), 4),
        "waiting for a month": (DeliveryStatus.RECEIVED, None, 31),
        "waiting since today": (DeliveryStatus.RECEIVED, None, 0),
    }
    async with database.transaction() as session:
        for name, (status, processed_at, days) in ages.items():
            session.add(
                WebhookDelivery(
                    organisation_id=connected.organisation.id,
                    shop_id=connected.shop.id,
                    topic="products/update",
                    webhook_id=name.replace(" ", "-"),
                    payload={},
                    status=status,
                    processed_at=processed_at,
                )
            )
            await session.flush()
            await session.execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.webhook_id == name.replace(" ", "-"))
                .values(created_at=now - timedelta(days=days))
            )
    async with database.transaction() as session:
        prune = APP.tasks["shopify:prune_webhook_deliveries"]
        await defer(session, prune, timestamp=int(now.timestamp()))
    await run_jobs(database, settings)
    async with database.transaction() as session:
        kept = set((await session.execute(select(WebhookDelivery.webhook_id))).scalars())
    assert kept == {"processed-just-now", "waiting-since-today"}
