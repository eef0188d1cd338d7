"""SIGTERM to ``cybergine worker``: a running job finishes within the grace period, or
is put back in the queue when it outlives it; never left in ``doing``."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import text

from cybergine.db.engine import Database
from cybergine.db.urls import libpq_url
from cybergine.queue import defer
from tests.ops.held_worker import RUNS_TABLE_DDL, held
from tests.support.processes import clean_env, wait_until

pytestmark = pytest.mark.slow  # worker processes stopped mid-job

ROOT = Path(__file__).resolve().parents[2]


def _start(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    handle = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "tests.ops.held_worker", "worker"],
        cwd=ROOT,
        env=env,
        stdout=handle,
        stderr=handle,
    )


def _phases(url: str, marker: str) -> list[str]:
    with psycopg.connect(libpq_url(url)) as conn:
        rows = conn.execute(
            "SELECT phase FROM test_job_runs WHERE marker = %s ORDER BY id", (marker,)
        ).fetchall()
    return [row[0] for row in rows]


def _job(url: str, job_id: int) -> tuple[str, int]:
    with psycopg.connect(libpq_url(url)) as conn:
        row = conn.execute(
            "SELECT status::text, attempts FROM procrastinate_jobs WHERE id = %s", (job_id,)
        ).fetchone()
    assert row is not None
    return row[0], row[1]


def _env(url: str, key_env: dict[str, str], tmp_path: Path, grace: float) -> dict[str, str]:
    return clean_env(
        CYBERGINE_DATABASE_URL=url,
        CYBERGINE_DATA_DIR=str(tmp_path / "data"),
        CYBERGINE_WORKER_SHUTDOWN_GRACE_SECONDS=str(grace),
        CYBERGINE_WORKER_HEARTBEAT_SECONDS="0.5",
        CYBERGINE_WORKER_STALLED_AFTER_SECONDS="60",  # no other path re-queues the job
        PYTHONPATH=str(ROOT),
        **key_env,
    )


async def _held_job(database: Database, marker: str, key: int) -> int:
    async with database.transaction() as session:
        await session.execute(text(RUNS_TABLE_DDL))
        return await defer(session, held, marker=marker, key=key)


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.kill()
        process.wait(timeout=10)


async def test_a_running_job_finishes_after_sigterm(
    database: Database, database_url: str, key_env: dict[str, str], tmp_path: Path
) -> None:
    marker, key = uuid.uuid4().hex, random.randint(1, 2**31)
    job_id = await _held_job(database, marker, key)
    log = tmp_path / "worker.log"
    with psycopg.connect(libpq_url(database_url), autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (key,))
        worker = _start(_env(database_url, key_env, tmp_path, grace=60), log)
        try:
            wait_until(lambda: _phases(database_url, marker) == ["started"], 60, "job started")
            os.kill(worker.pid, signal.SIGTERM)
            wait_until(lambda: "Stop requested" in log.read_text(), 20, "worker told to stop")
            assert worker.poll() is None, "the worker left its job running"
            released = time.monotonic()
            holder.execute("SELECT pg_advisory_unlock(%s)", (key,))
            assert worker.wait(timeout=30) == 0, log.read_text()[-3000:]
            stopped_after = time.monotonic() - released
        finally:
            _stop(worker)
    assert _phases(database_url, marker) == ["started", "finished"]
    assert _job(database_url, job_id) == ("succeeded", 1)
    print(f"worker stopped {stopped_after:.2f} s after its last job could finish")


async def test_a_job_outliving_the_grace_goes_back_to_the_queue(
    database: Database, database_url: str, key_env: dict[str, str], tmp_path: Path
) -> None:
    marker, key = uuid.uuid4().hex, random.randint(1, 2**31)
    job_id = await _held_job(database, marker, key)
    log = tmp_path / "worker.log"
    env = _env(database_url, key_env, tmp_path, grace=1)
    with psycopg.connect(libpq_url(database_url), autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s)", (key,))
        worker = _start(env, log)
        try:
            wait_until(lambda: _phases(database_url, marker) == ["started"], 60, "job started")
            signalled = time.monotonic()
            os.kill(worker.pid, signal.SIGTERM)
            assert worker.wait(timeout=30) == 0, log.read_text()[-3000:]
            stopped_after = time.monotonic() - signalled
        finally:
            _stop(worker)
        # Released as it was: runnable now, its attempt not counted, nothing in `doing`.
        assert _job(database_url, job_id) == ("todo", 0)
        with psycopg.connect(libpq_url(database_url)) as conn:
            doing = conn.execute(
                "SELECT count(*) FROM procrastinate_jobs WHERE status = 'doing'"
            ).fetchone()
        assert doing == (0,)
        holder.execute("SELECT pg_advisory_unlock(%s)", (key,))

    second = _start(env, log)
    try:
        wait_until(lambda: _job(database_url, job_id)[0] == "succeeded", 60, "job run again")
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)
    assert _phases(database_url, marker) == ["started", "started", "finished"]
    assert 1 <= stopped_after < 10, stopped_after
    print(f"worker stopped {stopped_after:.2f} s after SIGTERM with a 1 s grace")
