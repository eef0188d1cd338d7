"""A worker that waits for jobs listens for them (NOTIFY wakes it at once); a run that
stops once the queue is empty does not, and so holds no connection for it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from sqlalchemy import text

import tests.support.tasks as test_tasks
from cybergine.db.engine import Database
from cybergine.jobs import Worker
from cybergine.queue import defer
from cybergine.settings import Settings
from tests.support.jobs import tasks_without_schedule


async def _phases(database: Database, marker: str) -> list[str]:
    async with database.transaction() as session:
        rows = await session.scalars(
            text("SELECT phase FROM test_job_runs WHERE marker = :m ORDER BY id"), {"m": marker}
        )
        return list(rows)


async def _defer_count(database: Database, marker: str) -> None:
    async with database.transaction() as session:
        await session.execute(text(test_tasks.RUNS_TABLE_DDL))
        await defer(session, test_tasks.count_listeners, marker=marker)


async def _until(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, f"not in {seconds} s: {what}"
        await asyncio.sleep(0.02)


def _worker(database: Database, settings: Settings) -> Worker:
    return Worker(database, settings=settings, concurrency=1, app=tasks_without_schedule())


async def test_a_run_that_stops_when_the_queue_is_empty_does_not_listen(
    database: Database, settings: Settings
) -> None:
    await _defer_count(database, "once")

    await _worker(database, settings).run(wait=False, install_signal_handlers=False)

    assert await _phases(database, "once") == ["listeners=0"]


async def test_a_waiting_worker_listens_and_the_count_sees_it(
    database: Database, settings: Settings
) -> None:
    async def listening() -> bool:
        async with database.transaction() as session:
            return bool(await session.scalar(text(test_tasks.LISTENERS)))

    running = asyncio.create_task(
        _worker(database, settings).run(wait=True, install_signal_handlers=False)
    )
    try:
        await _until(listening, "the worker listens")
        await _defer_count(database, "waiting")

        async def counted() -> bool:
            return bool(await _phases(database, "waiting"))

        await _until(counted, "the job ran")
        assert await _phases(database, "waiting") == ["listeners=1"]
    finally:
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running
