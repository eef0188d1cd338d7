"""Run the jobs a test has deferred, to the end, in the test's own process."""

from __future__ import annotations

from functools import cache

import procrastinate
from sqlalchemy import text

from cybergine.db.engine import Database
from cybergine.jobs import APP, Worker
from cybergine.settings import Settings

# A worker run without waiting stops once one of its sub-workers finds the queue empty,
# which can be while another runs a job that then defers the next (a sweep's refresh, a
# sync's next step): the runs go on until no job a worker would take is left, this many
# at most.
MAX_WORKER_RUNS = 20

# A due job a worker would take: one behind another of its lock, even one scheduled later
# (a send waiting for a throttled send's retry), waits for that one, as in Procrastinate's
# ``procrastinate_fetch_job_v2``.
_RUNNABLE = text(
    """
    SELECT EXISTS (
        SELECT 1 FROM procrastinate_jobs AS job
        WHERE job.status = 'todo' AND (job.scheduled_at IS NULL OR job.scheduled_at <= now())
          AND NOT EXISTS (
              SELECT 1 FROM procrastinate_jobs AS other
              WHERE job.lock IS NOT NULL AND other.lock = job.lock
                AND (other.status = 'doing' OR (other.status = 'todo' AND (
                     other.priority > job.priority
                     OR (other.priority = job.priority AND other.id < job.id)))))
    )
    """
)


@cache
def tasks_without_schedule() -> procrastinate.App:
    """The one App's tasks without its periodic schedule. A worker's first act is to defer
    every periodic task due in the last ten minutes: in a test, the retention purge or an
    analytics sweep would then run inside an unrelated test, or not, by the minute of the
    hour. Jobs defer on the caller's connection (``cybergine.queue.defer``), so this App's
    own connector is never opened either."""
    APP.perform_import_paths()
    app = procrastinate.App(connector=procrastinate.PsycopgConnector())
    app.tasks = APP.tasks
    return app


async def run_jobs(database: Database, settings: Settings) -> None:
    """Run every job the test has deferred and that a worker would take now, and every
    such job they defer, then return, without deferring the periodic ones
    (``tasks_without_schedule``)."""
    for _ in range(MAX_WORKER_RUNS):
        await Worker(database, settings=settings, concurrency=2, app=tasks_without_schedule()).run(
            wait=False, install_signal_handlers=False
        )
        async with database.transaction() as session:
            if not await session.scalar(_RUNNABLE):
                return
    raise AssertionError("jobs still waiting after every worker run")
