"""The worker tests run to finish what they deferred (``tests.support.jobs.run_jobs``)
runs exactly that: none of the App's periodic tasks is deferred in the test's database,
whatever the minute of the hour, so a purge or a sweep never runs inside an unrelated test."""

from __future__ import annotations

from sqlalchemy import text

import tests.support.tasks
from cybergine.db.engine import Database
from cybergine.jobs import APP
from cybergine.queue import defer
from cybergine.settings import Settings
from tests.support.jobs import run_jobs


async def test_the_tests_worker_runs_what_was_deferred_and_defers_no_periodic_job(
    database: Database, settings: Settings
) -> None:
    periodic = {name for name, _ in APP.periodic_registry.periodic_tasks}
    assert "privacy:purge_expired_data" in periodic  # what a production worker would defer
    async with database.transaction() as session:
        await session.execute(text(tests.support.tasks.RUNS_TABLE_DDL))
        await defer(session, tests.support.tasks.flaky, marker="deferred", failures=0)

    await run_jobs(database, settings)

    async with database.transaction() as session:
        jobs = (
            await session.execute(text("SELECT task_name, status FROM procrastinate_jobs"))
        ).all()
        defers = await session.scalar(text("SELECT count(*) FROM procrastinate_periodic_defers"))
    assert [tuple(job) for job in jobs] == [("tests:flaky", "succeeded")]
    assert defers == 0
