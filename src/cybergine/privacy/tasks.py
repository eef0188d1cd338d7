"""Retention jobs of the privacy domain."""

from __future__ import annotations

import procrastinate
import structlog
from sqlalchemy import text

from cybergine.job_names import JobName
from cybergine.privacy import audit, purge, registry
from cybergine.privacy.purging import Pace
from cybergine.queue import DATABASE_CONTEXT_KEY, job_session, job_settings

blueprint = procrastinate.Blueprint()
log = structlog.get_logger(__name__)


@blueprint.periodic(cron="7 * * * *", periodic_id="retention_purge")
@blueprint.task(name="purge_expired_data", pass_context=True, queueing_lock="retention_purge")
async def purge_expired_data(context: procrastinate.JobContext, timestamp: int) -> int:
    """Policy §11: everything past its retention period, every hour, in small batches
    (``privacy.purge``); the queueing lock keeps one run at a time. Returns the rows
    removed."""
    report = await purge.run(
        context.additional_context[DATABASE_CONTEXT_KEY], pace=Pace.of(job_settings(context))
    )
    return sum(removal.rows for removal in report.removals)


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


@blueprint.periodic(cron="37 * * * *", periodic_id="seal_legacy_audit_entries")
@blueprint.task(
    name="seal_legacy_audit_entries", pass_context=True, queueing_lock="seal_legacy_audit"
)
async def seal_legacy_audit_entries(context: procrastinate.JobContext, timestamp: int) -> int:
    """Entries written before actor labels left the hash chain (migration 0016) hold an
    e-mail address: seal them a batch an hour until none is left (then a no-op)."""
    async with job_session(context) as session:
        return await audit.seal_legacy_entries(session)
