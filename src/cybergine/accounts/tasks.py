"""Jobs of the accounts domain."""

from __future__ import annotations

import uuid

import procrastinate

from cybergine.accounts import service, throttle
from cybergine.accounts.service import own_account, password_reset, sessions, user_erasure
from cybergine.job_names import JobName
from cybergine.queue import DEFAULT_RETRY, job_session

blueprint = procrastinate.Blueprint()


@blueprint.task(name=JobName.ERASE_ORGANISATION.task, pass_context=True, retry=DEFAULT_RETRY)
async def erase_organisation(context: procrastinate.JobContext, organisation_id: str) -> None:
    async with job_session(context) as session:
        await service.erase_if_due(session, uuid.UUID(organisation_id))


@blueprint.periodic(cron="41 * * * *", periodic_id="prune_credentials")
@blueprint.task(name="prune_credentials", pass_context=True, queueing_lock="prune_credentials")
async def prune_credentials(context: procrastinate.JobContext, timestamp: int) -> None:
    """Expired sessions, used or expired reset and e-mail confirmation links, old
    throttled attempts: operational data with no reason to outlive its use."""
    async with job_session(context) as session:
        await sessions.prune_expired(session)
        await password_reset.prune_expired(session)
        await own_account.prune_expired(session)
        await throttle.prune_attempts(session)


@blueprint.periodic(cron="23 * * * *", periodic_id="erase_departed_users")
@blueprint.task(
    name="erase_departed_users", pass_context=True, queueing_lock="erase_departed_users"
)
async def erase_departed_users(context: procrastinate.JobContext, timestamp: int) -> int:
    """Policy §11: a user left without any organisation is erased 30 days later."""
    async with job_session(context) as session:
        return await user_erasure.erase_departed(session)
