"""The security monitor's periodic job."""

from __future__ import annotations

import procrastinate

from cybergine.queue import job_session, job_settings
from cybergine.security import monitor

blueprint = procrastinate.Blueprint()


@blueprint.periodic(cron="*/5 * * * *", periodic_id="security_monitor")
@blueprint.task(name="raise_alerts", pass_context=True, queueing_lock="security_monitor")
async def raise_alerts(context: procrastinate.JobContext, timestamp: int) -> int:
    """Policy §12: every five minutes, bursts of failed sign-ins, permission denials,
    WhatsApp signature failures and customer exports or erasures alert the owners
    (``security.monitor``). Returns the alerts raised."""
    async with job_session(context) as session:
        return len(await monitor.raise_alerts(session, job_settings(context)))
