"""Jobs of the accounts domain."""

from __future__ import annotations

import uuid

import procrastinate

from cybergine.accounts import service
from cybergine.queue import DEFAULT_RETRY, job_session

blueprint = procrastinate.Blueprint()


@blueprint.task(name="erase_organisation", pass_context=True, retry=DEFAULT_RETRY)
async def erase_organisation(context: procrastinate.JobContext, organisation_id: str) -> None:
    async with job_session(context) as session:
        await service.erase_if_due(session, uuid.UUID(organisation_id))
