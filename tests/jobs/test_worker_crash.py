"""A job interrupted by a worker killed with SIGKILL is run again by the next worker."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

import tests.support.tasks as test_tasks
from cybergine.db.engine import Database
from cybergine.db.urls import libpq_url
from cybergine.queue import defer

pytestmark = pytest.mark.slow  # workers as processes, one killed mid-job

ROOT = Path(__file__).resolve().parents[2]


def _start_worker(url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.run_worker", url],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _phases(url: str, marker: str) -> list[str]:
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute(
            "SELECT phase FROM test_job_runs WHERE marker = %s ORDER BY id", (marker,)
        ).fetchall()
    return [row[0] for row in rows]


def _wait_for(predicate: object, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


async def test_killed_worker_job_runs_again(database: Database, database_url: str) -> None:
    marker = uuid.uuid4().hex
    async with database.transaction() as session:
        await session.execute(text(test_tasks.RUNS_TABLE_DDL))
        await defer(session, test_tasks.slow, marker=marker, seconds=3.0)

    first = _start_worker(database_url)
    try:
        _wait_for(lambda: _phases(database_url, marker) == ["started"], timeout=30)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()

    second = _start_worker(database_url)
    try:
        _wait_for(lambda: "finished" in _phases(database_url, marker), timeout=45)
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=20)

    # Started twice (the first run died with its worker), finished exactly once.
    assert _phases(database_url, marker) == ["started", "started", "finished"]
    with psycopg.connect(libpq_url(database_url)) as conn:
        (status,) = conn.execute(
            "SELECT status FROM procrastinate_jobs WHERE task_name = 'tests:slow'"
        ).fetchone()  # type: ignore[misc]
    assert status == "succeeded"
