"""Jobs of the WhatsApp channel: sending messages, fetching media, pruning raw events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import procrastinate
from sqlalchemy import delete

from cybergine.channels.whatsapp import delivery
from cybergine.channels.whatsapp.models import WebhookEvent
from cybergine.channels.whatsapp.retries import MEDIA_RETRY, SEND_RETRY
from cybergine.db import partitions
from cybergine.db.engine import Database
from cybergine.job_names import JobName
from cybergine.queue import DATABASE_CONTEXT_KEY, job_settings

blueprint = procrastinate.Blueprint()

WEBHOOK_EVENTS_KEPT_DAYS = 7


@blueprint.task(name=JobName.SEND_WHATSAPP_MESSAGE.task, pass_context=True, retry=SEND_RETRY)
async def send_message(context: procrastinate.JobContext, message_id: str) -> str:
    assert context.job is not None
    return await delivery.send(
        context.additional_context[DATABASE_CONTEXT_KEY],
        job_settings(context),
        uuid.UUID(message_id),
        last_attempt=SEND_RETRY.is_last_attempt(context.job),
    )


@blueprint.task(name=JobName.FETCH_WHATSAPP_MEDIA.task, pass_context=True, retry=MEDIA_RETRY)
async def fetch_media(context: procrastinate.JobContext, attachment_id: str) -> str:
    assert context.job is not None
    return await delivery.fetch_media(
        context.additional_context[DATABASE_CONTEXT_KEY],
        job_settings(context),
        uuid.UUID(attachment_id),
        last_attempt=MEDIA_RETRY.is_last_attempt(context.job),
    )


@blueprint.periodic(cron="23 * * * *", periodic_id="prune_whatsapp_events")
@blueprint.task(name="prune_webhook_events", pass_context=True, queueing_lock="prune_wa_events")
async def prune_webhook_events(context: procrastinate.JobContext, timestamp: int) -> int:
    """Raw deliveries are for debugging; the messages hold what is kept."""
    return await prune_events(context.additional_context[DATABASE_CONTEXT_KEY], datetime.now(UTC))


async def prune_events(database: Database, now: datetime) -> int:
    """Events older than ``WEBHOOK_EVENTS_KEPT_DAYS``: each day's partition a week after
    its day, then the rows of the day that straddles the cut (``db.partitions``)."""
    cutoff = now - timedelta(days=WEBHOOK_EVENTS_KEPT_DAYS)
    partitioning = partitions.PARTITIONED[WebhookEvent.__tablename__]
    dropped = await partitions.drop_expired(database, partitioning, cutoff)
    async with database.transaction() as session:
        result = await session.execute(delete(WebhookEvent).where(WebhookEvent.created_at < cutoff))
    deleted = int(getattr(result, "rowcount", 0) or 0)
    return deleted + sum(sum(partition.rows.values()) for partition in dropped)
