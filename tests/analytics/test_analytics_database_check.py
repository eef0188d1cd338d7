"""``cybergine check`` and the analytics database: it must answer and be at the primary's
migration; a database that is no replica (``pg_is_in_recovery()`` false: a primary named
by mistake, or a copy as here) is allowed, with a warning. ``serve`` says the same at
start, as warnings, and serves."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest

from cybergine.db.migrate import head_revision
from cybergine.ops.check import analytics_database_check
from cybergine.settings import Settings
from tests.analytics.copies import UNREACHABLE, copy_of
from tests.support.databases import drop_database
from tests.support.processes import CYBERGINE, clean_env, start_serve
from tests.support.server import free_port


@pytest.fixture
def copy_url(database_url: str, postgres_admin_url: str) -> Iterator[str]:
    url = copy_of(postgres_admin_url, database_url)
    yield url
    drop_database(postgres_admin_url, url)


def _with(settings: Settings, url: str) -> Settings:
    return settings.model_copy(update={"analytics_database_url": url})


async def test_unset_there_is_nothing_to_check(settings: Settings, database_url: str) -> None:
    found = await analytics_database_check(settings, database_url)
    assert (found.problems, found.warning) == ([], None)


async def test_a_database_that_is_no_replica_is_allowed_with_a_warning(
    settings: Settings, database_url: str, copy_url: str
) -> None:
    found = await analytics_database_check(_with(settings, copy_url), database_url)
    assert found.problems == []
    assert found.replica is False
    assert found.revision == head_revision()
    assert found.warning is not None
    assert "not a read replica (pg_is_in_recovery() is false)" in found.warning


async def test_a_database_at_another_migration_is_a_problem(
    settings: Settings, database_url: str, copy_url: str
) -> None:
    with psycopg.connect(copy_url, autocommit=True) as conn:
        conn.execute("UPDATE alembic_version SET version_num = '0001_older'")
    (problem,) = (await analytics_database_check(_with(settings, copy_url), database_url)).problems
    assert problem.what == "CYBERGINE_ANALYTICS_DATABASE_URL"
    assert f"at migration 0001_older, the primary at {head_revision()}" in problem.detail


async def test_an_unreachable_database_is_a_problem(settings: Settings, database_url: str) -> None:
    (problem,) = (
        await analytics_database_check(_with(settings, UNREACHABLE), database_url)
    ).problems
    assert problem.what == "CYBERGINE_ANALYTICS_DATABASE_URL"
    assert "the analytics database cannot be reached" in problem.detail


def test_cybergine_check_says_what_the_analytics_database_is(
    database_url: str, copy_url: str, key_env: dict[str, str], tmp_path: Path
) -> None:
    env = clean_env(
        CYBERGINE_DATABASE_URL=database_url,
        CYBERGINE_ANALYTICS_DATABASE_URL=copy_url,
        CYBERGINE_DATA_DIR=str(tmp_path / "data"),
        **key_env,
    )
    checked = subprocess.run(
        [CYBERGINE, "check"], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert checked.returncode == 0, checked.stderr
    assert f"analytics database (not a replica, migration {head_revision()})" in checked.stdout
    assert "warning: CYBERGINE_ANALYTICS_DATABASE_URL: names a database that is not a read" in (
        checked.stderr
    )


def test_serve_says_at_start_that_the_analytics_database_is_unreachable_and_serves(
    database_url: str, key_env: dict[str, str], tmp_path: Path
) -> None:
    env = clean_env(
        CYBERGINE_DATABASE_URL=database_url,
        CYBERGINE_ANALYTICS_DATABASE_URL=UNREACHABLE,
        CYBERGINE_DATA_DIR=str(tmp_path / "data"),
        CYBERGINE_EMBEDDED_WORKER="false",
        **key_env,
    )
    port, log = free_port(), tmp_path / "serve.log"
    server = start_serve(port, env, log)
    try:
        assert httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    said = log.read_text()
    assert "warning: CYBERGINE_ANALYTICS_DATABASE_URL: the analytics database cannot be" in said
    assert "(serving all the same: only analytics read it)" in said
