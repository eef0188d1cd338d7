"""Failed jobs are retried with capped, jittered exponential backoff."""

import uuid

from sqlalchemy import text

import tests.support.tasks as test_tasks
from cybergine.db.engine import Database
from cybergine.jobs import Worker
from cybergine.queue import Backoff, defer


def test_backoff_grows_exponentially_and_is_capped() -> None:
    backoff = Backoff(max_attempts=20, base_seconds=2, cap_seconds=600)
    for attempts in range(20):
        ceiling = min(600, 2 * 2**attempts)
        for _ in range(50):
            delay = backoff.delay_for(attempts)
            assert ceiling / 2 <= delay <= ceiling


async def _phases(database: Database, marker: str) -> list[str]:
    async with database.transaction() as session:
        rows = await session.execute(
            text("SELECT phase FROM test_job_runs WHERE marker = :m ORDER BY id"), {"m": marker}
        )
        return [row[0] for row in rows]


async def _run_until_idle(database: Database, rounds: int) -> None:
    for _ in range(rounds):
        await Worker(database, concurrency=1).run(wait=False, install_signal_handlers=False)


async def test_a_failing_job_is_retried_until_it_succeeds(database: Database) -> None:
    marker = uuid.uuid4().hex
    async with database.transaction() as session:
        await session.execute(text(test_tasks.RUNS_TABLE_DDL))
        await defer(session, test_tasks.flaky, marker=marker, failures=2)

    await _run_until_idle(database, rounds=3)

    assert await _phases(database, marker) == ["attempt", "attempt", "attempt", "finished"]


async def test_a_job_that_keeps_failing_stops_at_max_attempts(database: Database) -> None:
    marker = uuid.uuid4().hex
    async with database.transaction() as session:
        await session.execute(text(test_tasks.RUNS_TABLE_DDL))
        await defer(session, test_tasks.flaky, marker=marker, failures=99)

    await _run_until_idle(database, rounds=5)

    assert await _phases(database, marker) == ["attempt", "attempt", "attempt"]
    async with database.transaction() as session:
        status = await session.scalar(
            text("SELECT status FROM procrastinate_jobs WHERE task_name = 'tests:flaky'")
        )
    assert status == "failed"
