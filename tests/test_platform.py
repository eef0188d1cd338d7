"""The platform as an operator runs it: real processes, real signals, real restarts."""

from __future__ import annotations

import os
import re
import signal
from pathlib import Path

import httpx
import psycopg
import pytest

from cybergine.db import migrate
from cybergine.db.embedded import pid_file_owner
from cybergine.db.urls import with_database
from tests.support.processes import (
    clean_env,
    run_cli,
    start_separate_postgres,
    start_serve,
    stop_postgres,
    wait_until,
)
from tests.support.server import free_port

# `cybergine serve` and its PostgreSQL as processes, killed and restarted.
pytestmark = pytest.mark.slow

ORG_ID = re.compile(r"Demo organisation (created|already present): ([0-9a-f-]{36})")


def _demo(env: dict[str, str]) -> tuple[str, str]:
    match = ORG_ID.search(run_cli("demo", env=env))
    assert match, "demo printed no organisation id"
    return match.group(1), match.group(2)


def test_embedded_mode_survives_kill_9_and_stops_postgres_on_exit(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    pgdata = data_dir / "postgres"
    env = clean_env(CYBERGINE_DATA_DIR=str(data_dir))
    log = tmp_path / "serve.log"

    # The CLI starts the embedded server, seeds, and stops it again when it exits.
    created, org_id = _demo(env)
    assert created == "created"
    assert pid_file_owner(pgdata) is None

    port = free_port()
    server = start_serve(port, env, log)
    ready = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
    assert ready.status_code == 200, ready.text
    postmaster = pid_file_owner(pgdata)
    assert postmaster is not None

    # A second process (the CLI) attaches to the running server instead of starting one.
    assert _demo(env) == ("already present", org_id)
    assert pid_file_owner(pgdata) == postmaster

    # SIGKILL the server: nothing committed is lost, and a restart attaches again.
    server.send_signal(signal.SIGKILL)
    server.wait(timeout=10)
    server = start_serve(port, env, log)
    assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
    assert _demo(env) == ("already present", org_id)

    # SIGKILL PostgreSQL itself as well: the next start recovers from its WAL.
    server.send_signal(signal.SIGKILL)
    server.wait(timeout=10)
    os.kill(postmaster, signal.SIGKILL)
    wait_until(lambda: pid_file_owner(pgdata) is None, 20, "postgres did not die")
    server = start_serve(port, env, log)
    assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
    assert _demo(env) == ("already present", org_id)

    # A clean stop of the last process stops PostgreSQL.
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=30) == 0
    wait_until(lambda: pid_file_owner(pgdata) is None, 20, "postgres still running after stop")


def test_second_instance_by_url_uses_that_server_only(
    tmp_path: Path, key_env: dict[str, str]
) -> None:
    pgdata = tmp_path / "separate-postgres"
    admin_url = start_separate_postgres(pgdata)
    try:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute("CREATE DATABASE shop")
        url = with_database(admin_url, "shop")
        data_dir = tmp_path / "data"
        env = clean_env(
            CYBERGINE_DATABASE_URL=url,
            CYBERGINE_DATA_DIR=str(data_dir),
            CYBERGINE_EMBEDDED_WORKER="false",
            **key_env,
        )

        # Not embedded: `serve` does not migrate by itself, and says so by readiness.
        port = free_port()
        server = start_serve(port, env, tmp_path / "serve.log")
        try:
            assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 503
            head = migrate.head_revision()
            assert f"at migration {head}" in run_cli("migrate", env=env)
            assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
            created, org_id = _demo(env)
            assert created == "created"
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)

        # The rows are in the separate server, and no embedded server was made.
        assert not (data_dir / "postgres").exists()
        with psycopg.connect(url) as conn:
            row = conn.execute("SELECT name FROM organisations WHERE id = %s", (org_id,)).fetchone()
        assert row == ("Demo Shop",)
    finally:
        stop_postgres(pgdata)
