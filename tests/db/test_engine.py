"""Sessions and connections: what a dropped connection costs with and without the ping,
and statements that commit on their own."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from cybergine.db.engine import Database
from cybergine.db.urls import libpq_url


def _drop_connections(url: str, application_name: str) -> int:
    """What a server restart does to the pool: every connection is gone."""
    with psycopg.connect(libpq_url(url), autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = %s AND pid <> pg_backend_pid()",
            (application_name,),
        ).fetchone()
    assert row is not None
    return int(row[0])


async def _pid(database: Database) -> int:
    async with database.transaction() as session:
        return int(await session.scalar(text("SELECT pg_backend_pid()")) or 0)


async def test_with_the_ping_a_dropped_connection_is_replaced_unseen(database_url: str) -> None:
    database = Database(database_url, pool_size=1, application_name="cg-test-ping")
    try:
        first = await _pid(database)
        assert _drop_connections(database_url, "cg-test-ping") == 1
        assert await _pid(database) != first
    finally:
        await database.dispose()


async def test_without_the_ping_one_attempt_fails_and_the_next_reconnects(
    database_url: str,
) -> None:
    database = Database(
        database_url, pool_size=1, application_name="cg-test-no-ping", pre_ping=False
    )
    try:
        first = await _pid(database)
        assert _drop_connections(database_url, "cg-test-no-ping") == 1
        with pytest.raises(DBAPIError):
            await _pid(database)
        assert await _pid(database) != first
    finally:
        await database.dispose()


async def test_autocommit_statements_commit_one_by_one(database: Database) -> None:
    async with database.autocommit() as session:
        await session.execute(text("CREATE TABLE scratch (n int PRIMARY KEY)"))
        await session.execute(text("INSERT INTO scratch VALUES (1)"))
        with pytest.raises(DBAPIError):
            await session.execute(text("INSERT INTO scratch VALUES (1)"))  # duplicate
        # The failed statement took nothing with it and left no aborted transaction.
        await session.execute(text("INSERT INTO scratch VALUES (2)"))
    async with database.transaction() as session:
        rows = await session.scalars(text("SELECT n FROM scratch ORDER BY n"))
        assert list(rows) == [1, 2]
