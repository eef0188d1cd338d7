"""Retention jobs of the privacy domain."""

from __future__ import annotations

import procrastinate
import structlog
from sqlalchemy import text

from cybergine.job_names import JobName
from cybergine.privacy import audit, registry
from cybergine.queue import DATABASE_CONTEXT_KEY, job_session

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


@blueprint.task(name=JobName.VACUUM_ERASED.task, pass_context=True)
async def vacuum_erased(context: procrastinate.JobContext) -> list[str]:
    """Policy §14: the row versions an erasure (or a purge) left behind are removed within
    minutes, not whenever autovacuum's thresholds are next crossed. VACUUM cannot run in
    a transaction, and may take longer than a request's statement timeout."""
    tables = registry.tables(registry.Subject.CUSTOMER)
    database = context.additional_context[DATABASE_CONTEXT_KEY]
    async with database.autocommit() as session:
        await session.execute(text("SET statement_timeout = 0"))
        try:
            await session.execute(text(f"VACUUM {', '.join(tables)}"))
        finally:
            await session.execute(text("RESET statement_timeout"))
    log.info("vacuumed after erasure", tables=tables)
    return tables
