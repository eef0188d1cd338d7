"""The jobs that keep the analytics aggregates current."""

from __future__ import annotations

import uuid

import procrastinate
import structlog
from procrastinate.exceptions import AlreadyEnqueued

from cybergine.analytics import rollups
from cybergine.job_names import JobName
from cybergine.queue import defer, job_session, job_settings

blueprint = procrastinate.Blueprint()
log = structlog.get_logger(__name__)


def _measure(context: procrastinate.JobContext) -> rollups.Measure:
    return rollups.measure_now(job_settings(context).analytics_idle_resolution_hours)


@blueprint.periodic(cron="* * * * *", periodic_id="analytics_sweep")
@blueprint.task(name="sweep", pass_context=True, queueing_lock="analytics_sweep")
async def sweep(context: procrastinate.JobContext, timestamp: int) -> int:
    """Every minute: one refresh job for each organisation with changes. A refresh
    already waiting for an organisation takes its changes too (queueing lock), so a
    burst of messages makes one job. Returns how many were deferred."""
    deferred = 0
    async with job_session(context) as session:
        for organisation_id in await rollups.stale_organisations(session, _measure(context)):
            try:
                async with session.begin_nested():
                    await defer(
                        session,
                        JobName.REFRESH_ANALYTICS,
                        queueing_lock=rollups.refresh_lock(organisation_id),
                        organisation_id=str(organisation_id),
                    )
                deferred += 1
            except AlreadyEnqueued:
                continue
    return deferred


@blueprint.task(name=JobName.REFRESH_ANALYTICS.task, pass_context=True)
async def refresh(context: procrastinate.JobContext, organisation_id: str) -> int:
    """Recompute the hours of the organisation's conversations changed since the last
    refresh (idempotent: a second run finds the mark moved)."""
    async with job_session(context) as session:
        hours = await rollups.refresh(session, uuid.UUID(organisation_id), _measure(context))
    log.info("analytics refreshed", organisation_id=organisation_id, hours=hours)
    return hours
