"""Where the analytics are read: the analytics database when one is configured
(``CYBERGINE_ANALYTICS_DATABASE_URL``, a read replica of the primary), else the primary.

The caller is authenticated and authorised on the primary, in the request's transaction
(``accounts.auth.authorize``), as for every route; the figures are read through a
``TenantScope`` on the analytics database, in a read-only transaction of its own: an
analytics route cannot write there, even when the URL names a primary by mistake. The
inbox a figure drills down into stays on the primary (it lists the conversations as
they are now), so a figure read from a replica may trail its drill-down by the
replica's lag.

An analytics database that cannot be reached, at a request's start or lost in its middle,
answers 503 ``AnalyticsUnavailable`` on the analytics routes only; ``/readyz`` and the
rest of the product do not depend on it.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.exc import InterfaceError, OperationalError

from cybergine.accounts.auth import Caller, authorize
from cybergine.accounts.permissions import Permission
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.errors import CybergineError

log = structlog.get_logger(__name__)

# The first statement of every analytics transaction; it also opens the connection.
_READ_ONLY = text("SET TRANSACTION READ ONLY")


class AnalyticsUnavailable(CybergineError):
    status = 503
    type_slug = "analytics-unavailable"
    title = "Analytics unavailable"


def analytics_database(request: Request) -> Database:
    """The database analytics are read from: the analytics database the app opened
    (``app.state.analytics_database``), else the primary."""
    separate: Database | None = getattr(request.app.state, "analytics_database", None)
    if separate is not None:
        return separate
    primary: Database = request.app.state.database
    return primary


@asynccontextmanager
async def analytics_scope(
    database: Database, organisation_id: uuid.UUID
) -> AsyncIterator[TenantScope]:
    """``organisation_id``'s data on ``database``, in a read-only transaction (ended when
    the block ends). ``AnalyticsUnavailable`` when the database cannot be reached."""
    async with database.sessionmaker() as session, session.begin():
        try:
            await session.execute(_READ_ONLY)
        except (OperationalError, InterfaceError) as error:
            raise _unavailable(error) from None
        try:
            yield TenantScope(session, organisation_id)
        except (OperationalError, InterfaceError) as error:
            # Lost in the middle of the reads (a replica restarted, its host gone)? Then it
            # is a 503 like a refused start; an error of a database that still answers is
            # the error it is.
            if await _answers(database):
                raise
            raise _unavailable(error) from None


def _unavailable(error: OperationalError | InterfaceError) -> AnalyticsUnavailable:
    # Its text names the host; the log line says what failed, not where.
    log.warning("analytics database unreachable", error=type(error.orig or error).__name__)
    return AnalyticsUnavailable(
        "The analytics database is unreachable; the figures are back as soon as it "
        "answers again. Everything else works as usual.",
        analytics_database="unreachable",
    )


async def _answers(database: Database) -> bool:
    """Whether ``database`` answers a new connection now."""
    try:
        async with database.autocommit() as session:
            await session.execute(text("SELECT 1"))
    except (OperationalError, InterfaceError):
        return False
    return True


@dataclass(frozen=True)
class AnalyticsReader:
    """A caller of the analytics, checked on the primary (``caller``: the pages render
    with it), and the scope its figures are read from."""

    caller: Caller
    scope: TenantScope


def read_analytics(permission: Permission) -> Any:
    """``Annotated[AnalyticsReader, read_analytics(Permission.X)]``: the route's caller,
    authorised for ``permission`` (``authorize``), with a scope on the analytics
    database; without one, the request's own scope on the primary."""

    authorized = authorize(permission)

    async def dependency(
        request: Request, caller: Caller = authorized
    ) -> AsyncIterator[AnalyticsReader]:
        if getattr(request.app.state, "analytics_database", None) is None:
            yield AnalyticsReader(caller, caller.scope)
            return
        database = analytics_database(request)
        async with analytics_scope(database, caller.principal.organisation_id) as scope:
            yield AnalyticsReader(caller, scope)

    dependency.__name__ = f"read_analytics_{permission.name.lower()}"
    # Ended when the route returns, before the response is sent, as the request's own.
    return Depends(dependency, scope="function")


__all__ = [
    "AnalyticsReader",
    "AnalyticsUnavailable",
    "analytics_database",
    "analytics_scope",
    "read_analytics",
]
