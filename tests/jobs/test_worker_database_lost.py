"""A worker outlives its database going away (a restart, a fail-over): it runs the jobs
deferred once the database is back, and still stops gracefully on SIGTERM."""

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import psycopg
import pytest
from psycopg import sql
from sqlalchemy import text

import tests.support.tasks as test_tasks
from cybergine.db.engine import Database
from cybergine.db.urls import libpq_url
from cybergine.queue import defer

pytestmark = pytest.mark.slow  # a worker process, its connections cut

ROOT = Path(__file__).resolve().parents[2]
LOST = "worker.database_lost"
# The worker takes the database as lost once a connection is not had in this long.
CONNECTION_WAIT_SECONDS = 2
OPEN = sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true")


def _wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.1)
    raise AssertionError(f"not in {timeout} s: {what}")


def _start_worker(url: str, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "tests.support.run_worker", url],
            cwd=ROOT,
            stdout=out,
            stderr=out,
            env={
                **os.environ,
                "CYBERGINE_WORKER_CONNECTION_WAIT_SECONDS": str(CONNECTION_WAIT_SECONDS),
            },
        )


def _one(url: str, query: str, *params: object) -> object:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        row = conn.execute(query, params).fetchone()
    return row[0] if row else None


async def test_worker_runs_jobs_again_after_losing_the_database(
    database: Database, database_url: str, postgres_admin_url: str, tmp_path: Path
) -> None:
    marker = uuid.uuid4().hex
    async with database.transaction() as session:
        await session.execute(text(test_tasks.RUNS_TABLE_DDL))
    name = psycopg.conninfo.conninfo_to_dict(libpq_url(database_url))["dbname"]
    log = tmp_path / "worker.log"
    worker = _start_worker(database_url, log)

    def alive() -> bool:
        assert worker.poll() is None, f"the worker exited:\n{log.read_text()[-3000:]}"
        return True

    admin = psycopg.connect(libpq_url(postgres_admin_url), autocommit=True)
    try:
        _wait_for(
            lambda: alive() and _one(database_url, "SELECT count(*) FROM procrastinate_workers"),
            30,
            "the worker registered",
        )

        # The database goes away for a while (a restart, a fail-over): no connection is
        # accepted and every open one is cut, until Procrastinate's worker stops (a side
        # task failed, or its fetch loop: then within the connection wait) ...
        closed = sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(name))
        admin.execute(closed)
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        _wait_for(
            lambda: alive() and any(s in log.read_text() for s in ("side_task_failed", LOST)),
            75,
            "the worker stopped by the outage",
        )
        admin.execute(OPEN.format(sql.Identifier(name)))
        # ... and ours starts it again rather than ending the process.
        _wait_for(lambda: alive() and LOST in log.read_text(), 75, "the worker ran again")
        await database.dispose()  # this process's connections were cut too
        async with database.transaction() as session:
            await defer(session, test_tasks.slow, marker=marker, seconds=0.0)
        _wait_for(
            lambda: (
                alive()
                and _one(
                    database_url,
                    "SELECT count(*) FROM test_job_runs WHERE marker = %s AND phase = 'finished'",
                    marker,
                )
            ),
            45,
            "the job deferred after the outage ran",
        )
    finally:
        admin.execute(OPEN.format(sql.Identifier(name)))
        admin.close()
        if worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
        try:
            code = worker.wait(timeout=30)
        finally:
            if worker.poll() is None:
                worker.kill()
    assert code == 0, log.read_text()[-3000:]
