"""Retention jobs of the privacy domain."""

from __future__ import annotations

import procrastinate
import structlog

from cybergine.privacy import audit
from cybergine.queue import job_session

blueprint = procrastinate.Blueprint()
log = structlog.get_logger(__name__)


@blueprint.periodic(cron="11 4 * * *", periodic_id="purge_audit")
@blueprint.task(name="purge_expired_audit_events", pass_context=True, queueing_lock="purge_audit")
async def purge_expired_audit_events(context: procrastinate.JobContext, timestamp: int) -> int:
    """Policy §11: audit logs are kept for up to 7 years."""
    async with job_session(context) as session:
        purged = await audit.purge_expired(session)
    if purged:
        log.info("purged expired audit events", count=purged)
    return purged
