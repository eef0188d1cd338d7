"""One ``/metrics`` for every process of a host: ``cybergine serve`` reports the jobs a
separate ``cybergine worker`` ran, through the directory both share
(CYBERGINE_METRICS_DIR); a stopped worker's live gauges leave it, its counts stay."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from cybergine.db.engine import Database
from cybergine.observability.process import forget_gone_processes
from cybergine.settings import Settings
from tests.observability.conftest import Sample, scrape
from tests.support.factories import make_organisation_with_key
from tests.support.processes import CYBERGINE, clean_env, start_serve, wait_until
from tests.support.server import free_port

pytestmark = pytest.mark.slow

INDEX_TASK = "knowledge:index_item"


def _jobs_done(samples: dict[Sample, float]) -> float:
    return samples.get(
        (
            "cybergine_job_duration_seconds_count",
            frozenset({("task", INDEX_TASK), ("status", "succeeded")}),
        ),
        0.0,
    )


async def _api_key(database_url: str) -> str:
    database = Database(database_url, pool_size=1)
    try:
        _, key = await make_organisation_with_key(database)
    finally:
        await database.dispose()
    return key


def test_the_web_process_reports_what_a_worker_on_its_host_did(
    tmp_path: Path, database_url: str, settings: Settings
) -> None:
    assert settings.secret_key is not None
    assert settings.encryption_keys is not None
    directory = tmp_path / "metrics"
    env = clean_env(
        CYBERGINE_DATABASE_URL=database_url,
        CYBERGINE_DATA_DIR=str(tmp_path / "data"),
        CYBERGINE_EMBEDDED_WORKER="false",
        CYBERGINE_EMBEDDINGS="none",
        CYBERGINE_METRICS_DIR=str(directory),
        CYBERGINE_SECRET_KEY=settings.secret_key.get_secret_value(),
        CYBERGINE_ENCRYPTION_KEYS=settings.encryption_keys.get_secret_value(),
        CYBERGINE_LOG_LEVEL="WARNING",
    )
    port = free_port()
    server = start_serve(port, env, tmp_path / "serve.log")
    worker: subprocess.Popen[bytes] | None = None
    try:
        key = asyncio.run(_api_key(database_url))
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=10) as http:
            qa = {"question": "Do you ship abroad?", "answer": "Yes, to 30 countries."}
            added = http.post(
                "/api/v1/knowledge/qa", json=qa, headers={"authorization": f"Bearer {key}"}
            )
            assert added.status_code == 202, added.text
            assert _jobs_done(scrape(http)) == 0  # no worker ran it yet

            worker_port = free_port()
            with (tmp_path / "worker.log").open("ab") as log:
                worker = subprocess.Popen(
                    [CYBERGINE, "worker"],
                    env={**env, "CYBERGINE_WORKER_METRICS_PORT": str(worker_port)},
                    stdout=log,
                    stderr=log,
                )
            wait_until(
                lambda: _jobs_done(scrape(http)) >= 1,
                60,
                "the worker's job never showed in the web process' /metrics",
            )
            in_use = {
                labels for name, labels in scrape(http) if name.startswith("cybergine_db_pool_")
            }
            assert frozenset({("process", "worker")}) in in_use
            assert list(directory.glob(f"*_{worker.pid}.db"))
            # The worker serves the same figures itself, for a host with no web process.
            with httpx.Client(base_url=f"http://127.0.0.1:{worker_port}", timeout=10) as own:
                assert _jobs_done(scrape(own)) >= 1
                refused = own.get("/metrics", headers={"x-forwarded-for": "203.0.113.9"})
                assert refused.status_code == 404  # beyond this machine, and no token set

            worker.send_signal(signal.SIGTERM)
            assert worker.wait(timeout=60) == 0
            # Its live gauges (connections in use) go with it; its counts stay.
            assert not list(directory.glob(f"gauge_live*_{worker.pid}.db"))
            assert _jobs_done(scrape(http)) >= 1
    finally:
        if worker is not None and worker.poll() is None:
            worker.kill()
            worker.wait(timeout=30)
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=60)


def test_a_start_forgets_the_processes_that_are_gone(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    gone = 2**22 + 12345  # above any pid this machine hands out
    alive = os.getppid()  # whoever started the tests: running

    def write(*names: str) -> None:
        for name in names:
            (directory / name).write_bytes(b"")

    write(f"counter_{gone}.db", f"gauge_livesum_{gone}.db", f"histogram_{gone}.db")
    write(f"counter_{alive}.db", f"gauge_livesum_{alive}.db")
    forget_gone_processes(directory)
    # Another process still runs: only the gone one's live gauges leave.
    assert sorted(p.name for p in directory.iterdir()) == sorted(
        [
            f"counter_{gone}.db",
            f"histogram_{gone}.db",
            f"counter_{alive}.db",
            f"gauge_livesum_{alive}.db",
        ]
    )
    for path in directory.glob(f"*_{alive}.db"):
        path.unlink()
    forget_gone_processes(directory)
    assert not list(directory.iterdir())  # none runs: a fresh start
