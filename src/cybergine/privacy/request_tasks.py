"""The privacy domain's job for data-subject requests: owners hear of overdue ones."""

from __future__ import annotations

import procrastinate

from cybergine.privacy import requests
from cybergine.queue import job_session, job_settings

blueprint = procrastinate.Blueprint()


@blueprint.periodic(cron="41 * * * *", periodic_id="privacy_requests_overdue")
@blueprint.task(
    name="notify_overdue_requests", pass_context=True, queueing_lock="privacy_requests_overdue"
)
async def notify_overdue_requests(context: procrastinate.JobContext, timestamp: int) -> int:
    """Policy §14 (an answer within 30 days): every hour, owners are e-mailed about
    requests past their due date, each request at most once a day (``requests.
    notify_overdue`` marks and e-mails in one transaction). Returns the requests named."""
    async with job_session(context) as session:
        notices = await requests.notify_overdue(
            session, public_url=job_settings(context).public_url
        )
    return sum(len(notice.request_ids) for notice in notices)
