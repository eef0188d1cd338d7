"""The jobs of the time-partitioned tables (``db.partitions``): every hour, the current
partition of each and the ones after it are made ready, so rows land in the default
partition only when this job has not run for ``ahead`` days (or months); every day,
each table is analysed as a whole, which autovacuum never does."""

from __future__ import annotations

from datetime import UTC, datetime

import procrastinate

from cybergine.db import partitions
from cybergine.queue import DATABASE_CONTEXT_KEY

blueprint = procrastinate.Blueprint()


@blueprint.periodic(cron="3 * * * *", periodic_id="prepare_partitions")
@blueprint.task(name="prepare_partitions", pass_context=True, queueing_lock="partitions")
async def prepare_partitions(context: procrastinate.JobContext, timestamp: int) -> list[str]:
    """The partitions made (none when all were ready)."""
    database = context.additional_context[DATABASE_CONTEXT_KEY]
    now = datetime.now(UTC)
    made: list[str] = []
    for partitioning in partitions.PARTITIONED.values():
        made += await partitions.prepare(database, partitioning, now)
    return made


@blueprint.periodic(cron="47 4 * * *", periodic_id="analyse_partitioned")
@blueprint.task(name="analyse_partitioned", pass_context=True, queueing_lock="analyse_partitioned")
async def analyse_partitioned(context: procrastinate.JobContext, timestamp: int) -> list[str]:
    """The tables analysed (those whose lock was had in time)."""
    database = context.additional_context[DATABASE_CONTEXT_KEY]
    return [
        partitioning.table
        for partitioning in partitions.PARTITIONED.values()
        if await partitions.analyse(database, partitioning)
    ]
