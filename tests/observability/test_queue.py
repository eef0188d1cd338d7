"""The job queue as ``/metrics`` reads it from PostgreSQL when scraped: jobs due and
waiting, jobs running, and how long the longest-waiting due job has waited; a job
scheduled for later is not waiting yet."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from cybergine.db.engine import Database
from cybergine.job_names import JobName
from cybergine.jobs import APP
from cybergine.queue import defer
from tests.observability.conftest import scrape, value
from tests.support.server import LiveServer


async def test_depth_running_and_oldest_age_by_queue(
    live_server: LiveServer, database: Database
) -> None:
    queue = APP.tasks[JobName.REPLY.value].queue
    async with database.transaction() as session:
        for _ in range(3):
            await defer(session, JobName.REPLY, message_id="00000000-0000-0000-0000-000000000000")
        later = datetime.now(UTC) + timedelta(hours=1)
        await defer(session, JobName.REPLY, message_id="later", schedule_at=later)
    async with database.transaction() as session:
        # One waiting job deferred ten minutes ago; one running.
        await session.execute(
            text(
                "UPDATE procrastinate_events SET at = now() - interval '10 minutes' "
                "WHERE job_id = (SELECT min(id) FROM procrastinate_jobs) AND type = 'deferred'"
            )
        )
        await session.execute(
            text(
                "UPDATE procrastinate_jobs SET status = 'doing' "
                "WHERE id = (SELECT max(id) FROM procrastinate_jobs WHERE scheduled_at IS NULL)"
            )
        )
    with live_server.client() as http:
        samples = scrape(http)
    assert value(samples, "cybergine_job_queue_depth", queue=queue) == 2
    assert value(samples, "cybergine_job_queue_running", queue=queue) == 1
    age = value(samples, "cybergine_job_queue_oldest_age_seconds", queue=queue)
    assert 600 <= age < 900
    for other in {task.queue for task in APP.tasks.values()} - {queue}:
        assert value(samples, "cybergine_job_queue_depth", queue=other) == 0
