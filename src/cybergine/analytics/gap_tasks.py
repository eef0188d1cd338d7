"""The jobs that collect knowledge gaps (``analytics.gaps``): a sweep every minute, and
one collection per organisation with changes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import procrastinate
import structlog
from procrastinate.exceptions import AlreadyEnqueued
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.analytics import embedding_usage, gaps
from cybergine.job_names import JobName
from cybergine.knowledge.embeddings.base import metering
from cybergine.knowledge.providers import embedding_provider
from cybergine.queue import defer, job_session, job_settings

blueprint = procrastinate.Blueprint()
log = structlog.get_logger(__name__)


@blueprint.periodic(cron="* * * * *", periodic_id="knowledge_gaps_sweep")
@blueprint.task(
    name="knowledge_gaps_sweep", pass_context=True, queueing_lock="knowledge_gaps_sweep"
)
async def sweep(context: procrastinate.JobContext, timestamp: int) -> int:
    """Every minute: one collection for each organisation whose conversations changed
    since its last one (a collection already waiting takes the new changes too).
    Returns how many were deferred."""
    if embedding_provider(job_settings(context)) is None:
        return 0
    deferred = 0
    async with job_session(context) as session:
        for organisation_id in await gaps.stale_organisations(session):
            deferred += await _defer(session, organisation_id)
    return deferred


@blueprint.task(name=JobName.COLLECT_KNOWLEDGE_GAPS.task, pass_context=True)
async def collect(context: procrastinate.JobContext, organisation_id: str) -> int:
    """Embed and group the organisation's new gap questions (idempotent); a first
    collection with more history than one window defers the next window's."""
    embeddings = embedding_provider(job_settings(context))
    async with job_session(context) as session:
        with metering() as usage:
            found = await gaps.collect(
                session, uuid.UUID(organisation_id), embeddings, datetime.now(UTC)
            )
        await embedding_usage.record(
            session,
            uuid.UUID(organisation_id),
            usage,
            purpose=embedding_usage.Purpose.KNOWLEDGE_GAPS,
        )
        if not found.done:
            await _defer(session, uuid.UUID(organisation_id))
    log.info(
        "knowledge gaps collected",
        organisation_id=organisation_id,
        questions=found.added,
        done=found.done,
    )
    return found.added


async def _defer(session: AsyncSession, organisation_id: uuid.UUID) -> bool:
    """One collection of the organisation waiting (False: one already was)."""
    try:
        async with session.begin_nested():
            await defer(
                session,
                JobName.COLLECT_KNOWLEDGE_GAPS,
                queueing_lock=gaps.collect_lock(organisation_id),
                organisation_id=str(organisation_id),
            )
    except AlreadyEnqueued:
        return False
    return True
