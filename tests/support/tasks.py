"""Tasks used only by the job-system tests, registered on the real App.

They record each run in a table the tests create (``test_job_runs``), so a test
can count how many times a job really ran.
"""

from __future__ import annotations

import asyncio

import procrastinate
from sqlalchemy import text

from cybergine.jobs import APP
from cybergine.queue import Backoff, job_session

blueprint = procrastinate.Blueprint()

RUNS_TABLE_DDL = (
    "CREATE TABLE IF NOT EXISTS test_job_runs ("
    " id bigserial PRIMARY KEY, marker text NOT NULL, phase text NOT NULL,"
    " at timestamptz NOT NULL DEFAULT now())"
)


async def _record(context: procrastinate.JobContext, marker: str, phase: str) -> None:
    async with job_session(context) as session:
        await session.execute(
            text("INSERT INTO test_job_runs (marker, phase) VALUES (:m, :p)"),
            {"m": marker, "p": phase},
        )


@blueprint.task(name="slow", pass_context=True)
async def slow(context: procrastinate.JobContext, marker: str, seconds: float) -> None:
    await _record(context, marker, "started")
    await asyncio.sleep(seconds)
    await _record(context, marker, "finished")


@blueprint.task(
    name="flaky", pass_context=True, retry=Backoff(max_attempts=3, base_seconds=0, cap_seconds=0)
)
async def flaky(context: procrastinate.JobContext, marker: str, failures: int) -> None:
    """Fails its first ``failures`` runs, then succeeds."""
    await _record(context, marker, "attempt")
    if context.job.attempts < failures:
        raise RuntimeError(f"planned failure {context.job.attempts + 1}")
    await _record(context, marker, "finished")


# Procrastinate's listening connection: idle after its ``LISTEN``, which stays its query.
LISTENERS = (
    "SELECT count(*) FROM pg_stat_activity"
    " WHERE datname = current_database() AND query LIKE 'LISTEN %'"
)


@blueprint.task(name="count_listeners", pass_context=True)
async def count_listeners(context: procrastinate.JobContext, marker: str) -> None:
    """Records how many connections to the database listen for jobs as it runs."""
    async with job_session(context) as session:
        listening = await session.scalar(text(LISTENERS))
    await _record(context, marker, f"listeners={listening}")


if "tests:slow" not in APP.tasks:
    APP.add_tasks_from(blueprint, namespace="tests")
