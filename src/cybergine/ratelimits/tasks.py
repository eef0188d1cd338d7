"""Jobs of the shared rate limits."""

from __future__ import annotations

import procrastinate

from cybergine.queue import DATABASE_CONTEXT_KEY
from cybergine.ratelimits import limiter

blueprint = procrastinate.Blueprint()


@blueprint.periodic(cron="*/10 * * * *", periodic_id="prune_rate_counters")
@blueprint.task(name="prune_counters", pass_context=True, queueing_lock="prune_rate_counters")
async def prune_counters(context: procrastinate.JobContext, timestamp: int) -> int:
    """Counters of windows no limit looks at any more: operational, minutes old."""
    return await limiter.prune(context.additional_context[DATABASE_CONTEXT_KEY])
