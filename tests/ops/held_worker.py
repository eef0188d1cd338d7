"""``cybergine worker`` with one more task, ``ops_tests:held``, that runs until the test
lets it go (it waits for an advisory lock the test holds):
``python -m tests.ops.held_worker worker``."""

from __future__ import annotations

import sys

import procrastinate
from sqlalchemy import text

from cybergine.cli import main
from cybergine.jobs import APP
from cybergine.queue import job_session
from tests.support.tasks import RUNS_TABLE_DDL

blueprint = procrastinate.Blueprint()

__all__ = ["RUNS_TABLE_DDL", "held"]

_RECORD = "INSERT INTO test_job_runs (marker, phase) VALUES (:marker, :phase)"


@blueprint.task(name="held", pass_context=True)
async def held(context: procrastinate.JobContext, marker: str, key: int) -> None:
    async with job_session(context) as session:
        await session.execute(text(_RECORD), {"marker": marker, "phase": "started"})
    async with job_session(context) as session:
        await session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})
        await session.execute(text(_RECORD), {"marker": marker, "phase": "finished"})


if "ops_tests:held" not in APP.tasks:
    APP.add_tasks_from(blueprint, namespace="ops_tests")

if __name__ == "__main__":
    sys.argv[0] = "cybergine"
    main()
