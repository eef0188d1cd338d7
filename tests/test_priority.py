"""Background work runs below the web server's CPU priority: ``priority.lower_to`` (each
case in a thread of its own, which Linux gives a niceness of its own) and a real
``cybergine worker`` process, every thread of it."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from cybergine import priority
from cybergine.db.engine import Database
from cybergine.db.urls import libpq_url
from cybergine.job_names import JobName
from cybergine.queue import defer
from tests.support.processes import CYBERGINE, clean_env, wait_until


def _in_a_thread(work: Callable[[], object]) -> tuple[object, int]:
    """What ``work`` returned in a new thread, and that thread's niceness afterwards."""
    seen: list[tuple[object, int]] = []

    def run() -> None:
        returned = work()
        seen.append((returned, os.getpriority(os.PRIO_PROCESS, 0)))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    return seen[0]


def test_a_process_is_lowered_to_the_niceness_asked() -> None:
    before = os.getpriority(os.PRIO_PROCESS, 0)
    assert _in_a_thread(lambda: priority.lower_to(before + 7)) == (before + 7, before + 7)
    assert os.getpriority(os.PRIO_PROCESS, 0) == before  # the caller's thread only


def test_a_priority_already_lower_is_never_raised() -> None:
    start = os.getpriority(os.PRIO_PROCESS, 0)

    def niced_then_asked_for_less() -> int:
        os.setpriority(os.PRIO_PROCESS, 0, start + 12)
        return priority.lower_to(start + 7)

    assert _in_a_thread(niced_then_asked_for_less) == (start + 12, start + 12)


def test_threads_made_afterwards_inherit_it() -> None:
    start = os.getpriority(os.PRIO_PROCESS, 0)

    def lowered_then_a_thread() -> object:
        priority.lower_to(start + 5)
        return _in_a_thread(lambda: None)[1]

    assert _in_a_thread(lowered_then_a_thread)[0] == start + 5


def _niceness_of_every_thread(pid: int) -> dict[int, int]:
    """Thread id: niceness, from /proc (the 19th field of a task's stat)."""
    found: dict[int, int] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        fields = (task / "stat").read_text().rpartition(")")[2].split()
        found[int(task.name)] = int(fields[16])
    return found


async def _queue_a_job(url: str) -> int:
    database = Database(url, pool_size=1)
    try:
        async with database.transaction() as session:
            return await defer(session, JobName.VACUUM_ERASED)
    finally:
        await database.dispose()


def _status(url: str, job_id: int) -> str:
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute(
            "SELECT status::text FROM procrastinate_jobs WHERE id = %s", (job_id,)
        ).fetchone()
    assert row is not None
    return str(row[0])


@pytest.mark.slow  # a `cybergine worker` process
def test_every_thread_of_a_worker_runs_at_its_niceness(
    database_url: str, key_env: dict[str, str], tmp_path: Path
) -> None:
    job_id = asyncio.run(_queue_a_job(database_url))
    env = clean_env(
        CYBERGINE_DATABASE_URL=database_url,
        CYBERGINE_DATA_DIR=str(tmp_path / "data"),
        CYBERGINE_EMBEDDINGS="none",
        CYBERGINE_WORKER_NICE="7",
        **key_env,
    )
    with (tmp_path / "worker.log").open("ab") as log:
        worker = subprocess.Popen([CYBERGINE, "worker"], env=env, stdout=log, stderr=log)
    try:
        # Once it has run a job, every thread that takes has been made.
        wait_until(lambda: _status(database_url, job_id) == "succeeded", 60, "job not run")
        threads = _niceness_of_every_thread(worker.pid)
        assert set(threads.values()) == {7}, threads
    finally:
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0, (tmp_path / "worker.log").read_text()[-3000:]
