"""Jobs of whole-organisation exports: the build, and the periodic clean-up of files."""

from __future__ import annotations

import uuid

import procrastinate

from cybergine.job_names import JobName
from cybergine.privacy.organisation_export import service
from cybergine.queue import DATABASE_CONTEXT_KEY, job_settings

blueprint = procrastinate.Blueprint()


@blueprint.task(name=JobName.BUILD_ORGANISATION_EXPORT.task, pass_context=True)
async def build(context: procrastinate.JobContext, export_id: str) -> str | None:
    """No retry: a failed build is marked failed, and its owner asks again."""
    status = await service.build(
        context.additional_context[DATABASE_CONTEXT_KEY],
        job_settings(context).data_dir,
        uuid.UUID(export_id),
    )
    return status.value if status else None


@blueprint.periodic(cron="*/10 * * * *", periodic_id="expire_organisation_exports")
@blueprint.task(name="expire", pass_context=True, queueing_lock="expire_organisation_exports")
async def expire(context: procrastinate.JobContext, timestamp: int) -> int:
    """Operational data (policy §11): an export's file lives until it is downloaded or
    expires, and never outlives its organisation."""
    return await service.expire(
        context.additional_context[DATABASE_CONTEXT_KEY], job_settings(context).data_dir
    )
