"""Jobs of the Shopify app: processing stored webhook deliveries, the report of a
customer data request, pruning processed deliveries, and the app metafields the
storefront's chat embed reads."""

from __future__ import annotations

import uuid
from datetime import timedelta

import procrastinate
from sqlalchemy import delete, func, or_

from cybergine.job_names import JobName
from cybergine.queue import DATABASE_CONTEXT_KEY, DEFAULT_RETRY, job_session, job_settings
from cybergine.shopify import compliance, deliveries, storefront_embed
from cybergine.shopify.models import DeliveryStatus, WebhookDelivery

blueprint = procrastinate.Blueprint()

# A processed delivery is kept a short while for debugging; one still waiting for its
# job (a queue that was down) a month at most.
PROCESSED_DELIVERIES_KEPT = timedelta(days=3)
WAITING_DELIVERIES_KEPT = timedelta(days=30)


@blueprint.task(name=JobName.PROCESS_SHOPIFY_WEBHOOK.task, pass_context=True, retry=DEFAULT_RETRY)
async def process_webhook(context: procrastinate.JobContext, delivery_id: str) -> str | None:
    assert context.job is not None
    status = await deliveries.process(
        context.additional_context[DATABASE_CONTEXT_KEY],
        uuid.UUID(delivery_id),
        last_attempt=DEFAULT_RETRY.is_last_attempt(context.job),
    )
    return status.value if status is not None else None


@blueprint.task(name=JobName.SEND_SHOPIFY_DATA_REPORT.task, pass_context=True, retry=DEFAULT_RETRY)
async def send_data_report(
    context: procrastinate.JobContext, delivery_id: str, request_ids: list[str]
) -> bool:
    settings = job_settings(context)
    async with job_session(context) as session:
        return await compliance.send_data_report(
            session,
            uuid.UUID(delivery_id),
            [uuid.UUID(request_id) for request_id in request_ids],
            to=settings.shopify_compliance_email,
        )


@blueprint.task(
    name=JobName.SET_SHOPIFY_APP_METAFIELDS.task, pass_context=True, retry=DEFAULT_RETRY
)
async def set_app_metafields(context: procrastinate.JobContext, organisation_id: str) -> str | None:
    return await storefront_embed.write_app_metafields(
        context.additional_context[DATABASE_CONTEXT_KEY],
        job_settings(context),
        uuid.UUID(organisation_id),
    )


@blueprint.periodic(cron="29 * * * *", periodic_id="prune_shopify_deliveries")
@blueprint.task(
    name="prune_webhook_deliveries", pass_context=True, queueing_lock="prune_shopify_deliveries"
)
async def prune_webhook_deliveries(context: procrastinate.JobContext, timestamp: int) -> int:
    """Deliveries are operational: what they changed is kept where it belongs, and a
    compliance payload names a customer, so none outlives its use by long."""
    async with job_session(context) as session:
        result = await session.execute(
            delete(WebhookDelivery).where(
                or_(
                    (WebhookDelivery.status != DeliveryStatus.RECEIVED)
                    & (WebhookDelivery.processed_at < func.now() - PROCESSED_DELIVERIES_KEPT),
                    WebhookDelivery.created_at < func.now() - WAITING_DELIVERIES_KEPT,
                )
            )
        )
    return int(getattr(result, "rowcount", 0) or 0)
