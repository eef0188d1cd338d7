"""Engine, sessions and the transaction boundary.

Who commits: the edge. A web request gets one session whose transaction commits
when the route returns without error (``cybergine.web.deps``); a job gets one
session per run (``cybergine.jobs``). Services only add, flush and defer jobs on
the session they are given; they never commit.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from sqlalchemy import event, text
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from cybergine.db.urls import sqlalchemy_url
from cybergine.observability.pool import MeteredPool


class Database:
    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        statement_timeout_ms: int = 30_000,
        application_name: str = "cybergine",
        pre_ping: bool = True,
    ) -> None:
        """``pre_ping``: test each connection with a round trip before handing it out, so a
        connection the server dropped (a restart, a failover) is replaced unseen. A worker
        turns it off: its jobs are retried, and a job costs fewer round trips without it
        (after a restart one attempt fails, and the pool reconnects)."""
        self.url = url
        options = f"-c statement_timeout={statement_timeout_ms}" if statement_timeout_ms else ""
        connect_args: dict[str, Any] = {"application_name": application_name}
        if options:
            connect_args["options"] = options
        self.engine: AsyncEngine = create_async_engine(
            sqlalchemy_url(url),
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=pre_ping,
            # Counts connections in use and checkouts that wait (``/metrics``).
            poolclass=MeteredPool,
            connect_args=connect_args,
            # Parameters are customers' words and numbers: never in an error's text.
            hide_parameters=True,
        )
        event.listen(self.engine.sync_engine, "handle_error", _terse_database_error)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose transaction commits on normal exit and rolls back on error."""
        async with self.sessionmaker() as session, session.begin():
            yield session

    @asynccontextmanager
    async def autocommit(self) -> AsyncIterator[AsyncSession]:
        """A session whose statements each commit on their own: for reads that need no
        common snapshot and single-statement writes, without BEGIN and COMMIT round trips."""
        async with self.engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            async with AsyncSession(bind=autocommit, expire_on_commit=False) as session:
                yield session

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def _terse_database_error(context: ExceptionContext) -> None:
    """An error's text keeps only PostgreSQL's primary message: its DETAIL quotes the
    values of the row at fault (``Key (external_id)=(15550001111) already exists``), and
    errors end up in logs. The details stay on ``orig.diag`` for code that needs them."""
    original = context.original_exception
    diag = getattr(original, "diag", None)
    primary = getattr(diag, "message_primary", None)
    if not primary:
        return
    original.args = (primary,)
    if context.sqlalchemy_exception is not None:
        kind = f"{type(original).__module__}.{type(original).__name__}"
        context.sqlalchemy_exception.args = (f"({kind}) {primary}",)


async def raw_connection(session: AsyncSession) -> psycopg.AsyncConnection[Any]:
    """The psycopg connection under ``session``, inside its current transaction.

    Procrastinate defers jobs on it so that a job and the rows it concerns commit
    (or roll back) together.
    """
    conn = await session.connection()
    raw = await conn.get_raw_connection()
    driver = raw.driver_connection
    assert isinstance(driver, psycopg.AsyncConnection)
    return driver
