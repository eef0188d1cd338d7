"""Fetching the next job stays cheap when a burst of customer messages has queued
thousands of jobs, each under its conversation's lock (migration 0010)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import text

from cybergine.db.engine import Database

WAITING = 3000


async def _fetch_buffers(database: Database) -> tuple[int, Any]:
    """Shared buffers the second of two fetches reads (the first also plans the query,
    reading the catalogue), by the worker's own function, and what they got."""
    async with database.transaction() as session:
        worker = await session.scalar(text("SELECT procrastinate_register_worker_v1()"))
        await session.execute(
            text("SELECT * FROM procrastinate_fetch_job_v2(NULL, :worker)"), {"worker": worker}
        )
        plan = await session.scalar(
            text(
                "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) "
                "SELECT * FROM procrastinate_fetch_job_v2(NULL, :worker)"
            ),
            {"worker": worker},
        )
        fetched = await session.execute(
            text("SELECT lock FROM procrastinate_jobs WHERE status = 'doing'")
        )
        top = (plan if isinstance(plan, list) else json.loads(plan))[0]["Plan"]
        return int(top["Shared Hit Blocks"]) + int(top["Shared Read Blocks"]), fetched.all()


async def test_a_fetch_from_a_deep_queue_of_locked_jobs_reads_few_buffers(
    database: Database,
) -> None:
    async with database.transaction() as session:
        # The state right after a burst: one reply job per conversation, plus a running
        # job that holds the lock of the oldest waiting one.
        await session.execute(
            text(
                "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, status) "
                "SELECT 'default', 'conversations:reply', 'conversation:' || n, '{}', 'todo' "
                "FROM generate_series(1, :n) AS n"
            ),
            {"n": WAITING},
        )
        await session.execute(
            text(
                "INSERT INTO procrastinate_jobs (queue_name, task_name, lock, args, status) "
                "VALUES ('default', 'conversations:reply', 'conversation:1', '{}', 'doing')"
            )
        )
    buffers, fetched = await _fetch_buffers(database)
    # The oldest waiting job's conversation is busy: the next ones are fetched.
    assert sorted(row[0] for row in fetched) == [
        "conversation:1",
        "conversation:2",
        "conversation:3",
    ]
    # Without the lock index one fetch read ~23 buffers per waiting job (about 70,000
    # here); with it a fetch reads a few dozen, however deep the queue.
    assert buffers < 300, buffers
