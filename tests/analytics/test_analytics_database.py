"""Analytics read from the analytics database (``CYBERGINE_ANALYTICS_DATABASE_URL``) when
one is named, in read-only transactions, while sign-in, permissions, writes and the inbox
stay on the primary.

There is no streaming replica here: the analytics database is a copy of the test's
database made after seeding (``CREATE DATABASE ... TEMPLATE``), and then only the primary
changes (a conversation more). The analytics API and pages answer the copy's figures,
the inbox's drill-down the primary's conversations. An analytics database that cannot be
reached answers 503 on the analytics routes only."""

from __future__ import annotations

import csv
import io
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
from psycopg import sql
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, OperationalError

from cybergine.accounts.models import Role
from cybergine.analytics import service
from cybergine.analytics.periods import Filters, period
from cybergine.analytics.reading import AnalyticsUnavailable, analytics_scope
from cybergine.app import create_app
from cybergine.conversations.models import Direction, Sender
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.db.urls import libpq_url
from cybergine.settings import Settings
from tests.analytics import known
from tests.analytics.conftest import refresh
from tests.analytics.copies import UNREACHABLE, copy_of
from tests.support.browser import Browser
from tests.support.conversations import make_conversation, make_message
from tests.support.databases import drop_database
from tests.support.factories import make_api_key, make_organisation
from tests.support.inbox import member, signed_in
from tests.support.server import LiveServer

# Each figure route of the API, with a period.
ROUTES = ("summary", "timeseries", "knowledge-gaps", "conversations.csv")


@dataclass
class Replicated:
    history: known.Known
    api: httpx.Client
    admin_api: httpx.Client
    browser: Browser
    primary: Database
    copy_url: str

    def period(self, **extra: str) -> dict[str, str]:
        return {
            "from": self.history.first.isoformat(),
            "to": self.history.last.isoformat(),
            **extra,
        }


async def _one_more_conversation(database: Database, history: known.Known) -> None:
    """A conversation begun an hour ago, on the primary only."""
    async with database.transaction() as session:
        started = datetime.now(UTC) - timedelta(hours=1)
        conversation = await make_conversation(
            session, history.organisation_id, created_at=started, assistant_id=history.assistant_b
        )
        await make_message(
            session,
            conversation,
            direction=Direction.INBOUND,
            sender=Sender.CUSTOMER,
            created_at=started,
        )
        conversation.last_message_at = started
    await refresh(database, history)


@pytest.fixture
async def replicated(
    database: Database,
    database_url: str,
    postgres_admin_url: str,
    settings: Settings,
) -> AsyncIterator[Replicated]:
    organisation, _ = await make_organisation(database, name="Known history")
    async with database.transaction() as session:
        history = await known.seed(session, organisation.id, datetime.now(UTC))
    await refresh(database, history)
    key = await make_api_key(database, organisation.id, Role.VIEWER)
    admin_key = await make_api_key(database, organisation.id, Role.ADMIN)
    viewer = await member(database, organisation.id, Role.VIEWER)
    await database.dispose()  # the copy needs its source to itself
    copy_url = copy_of(postgres_admin_url, database_url)
    try:
        await _one_more_conversation(database, history)
        app = create_app(
            settings.model_copy(update={"analytics_database_url": copy_url}), run_worker=False
        )
        with (
            LiveServer(app) as server,
            server.client(headers={"authorization": f"Bearer {key}"}) as api,
            server.client(headers={"authorization": f"Bearer {admin_key}"}) as admin_api,
            signed_in(server.url, viewer) as browser,
        ):
            yield Replicated(history, api, admin_api, browser, database, copy_url)
    finally:
        drop_database(postgres_admin_url, copy_url)


async def test_the_figures_are_the_analytics_databases_and_the_drilldown_the_primarys(
    replicated: Replicated,
) -> None:
    filters = Filters(period(replicated.history.first, replicated.history.last, "UTC"))
    async with replicated.primary.transaction() as session:
        on_primary = await service.summary(
            TenantScope(session, replicated.history.organisation_id), filters
        )
    assert on_primary.current.headline()["conversations"] == 7  # the primary moved on

    summary = replicated.api.get("/api/v1/analytics/summary", params=replicated.period())
    assert summary.status_code == 200, summary.text
    assert summary.json()["figures"]["conversations"]["value"] == 6  # the copy's
    points = replicated.api.get("/api/v1/analytics/timeseries", params=replicated.period())
    assert sum(p["figures"]["conversations"] for p in points.json()["points"]) == 6
    exported = replicated.api.get("/api/v1/analytics/conversations.csv", params=replicated.period())
    assert exported.status_code == 200, exported.text
    assert len(list(csv.DictReader(io.StringIO(exported.text)))) == 6

    # The drill-down is the inbox: the conversations as they are now, on the primary.
    drilldown = summary.json()["drilldown"]["conversations"]
    listed = replicated.api.get(f"{drilldown}&limit=200")
    assert listed.status_code == 200, listed.text
    assert len(listed.json()["items"]) == 7


def test_the_pages_show_the_analytics_databases_figures(replicated: Replicated) -> None:
    query = "&".join(f"{k}={v}" for k, v in replicated.period(timezone="UTC").items())
    page = replicated.browser.get(f"/analytics?{query}")
    assert page.status_code == 200, page.text
    shown = re.search(
        r'data-figure="conversations">.*?class="figure-value"[^>]*>([^<]*)<', page.text, re.DOTALL
    )
    assert shown is not None
    assert shown[1].strip() == "6"
    gaps = replicated.browser.get(f"/analytics/knowledge-gaps?{query}")
    assert gaps.status_code == 200, gaps.text


def test_every_analytics_read_answers_from_the_analytics_database(
    replicated: Replicated,
) -> None:
    for route in ROUTES:
        response = replicated.api.get(f"/api/v1/analytics/{route}", params=replicated.period())
        assert response.status_code == 200, (route, response.text)
    usage = replicated.admin_api.get("/api/v1/analytics/api-usage", params=replicated.period())
    assert usage.status_code == 200, usage.text
    # Every connection they made to the copy is the analytics pool's.
    with psycopg.connect(replicated.copy_url, autocommit=True) as conn:
        names = conn.execute(
            "SELECT DISTINCT application_name FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND backend_type = 'client backend'"
        ).fetchall()
    assert names == [("cybergine-analytics",)]


async def test_an_analytics_transaction_is_read_only(replicated: Replicated) -> None:
    database = Database(replicated.copy_url, pool_size=1)
    try:
        async with analytics_scope(database, replicated.history.organisation_id) as scope:
            assert await scope.session.scalar(text("SHOW transaction_read_only")) == "on"
        with pytest.raises(DBAPIError) as refused:
            async with analytics_scope(database, replicated.history.organisation_id) as scope:
                await scope.session.execute(text("DELETE FROM conversations"))
        assert isinstance(refused.value.orig, psycopg.errors.ReadOnlySqlTransaction)
    finally:
        await database.dispose()


@pytest.fixture
def unreachable(settings: Settings) -> Iterator[LiveServer]:
    app = create_app(
        settings.model_copy(update={"analytics_database_url": UNREACHABLE}), run_worker=False
    )
    with LiveServer(app) as server:
        yield server


async def test_an_unreachable_analytics_database_answers_503_and_nothing_else_fails(
    unreachable: LiveServer, database: Database
) -> None:
    organisation, _ = await make_organisation(database, name="Replica down")
    key = await make_api_key(database, organisation.id, Role.ADMIN)
    viewer = await member(database, organisation.id, Role.VIEWER)
    with unreachable.client(headers={"authorization": f"Bearer {key}"}) as api:
        for route in (*ROUTES, "api-usage"):
            response = api.get(f"/api/v1/analytics/{route}")
            assert response.status_code == 503, (route, response.text)
            assert response.headers["content-type"].startswith("application/problem+json")
            problem = response.json()
            assert problem["type"] == "urn:cybergine:problem:analytics-unavailable"
            assert "analytics database is unreachable" in problem["detail"]
            assert problem["analytics_database"] == "unreachable"
        assert api.get("/readyz").status_code == 200
        assert api.get("/api/v1/conversations").status_code == 200
        assert api.get("/api/v1/assistants").status_code == 200
        # Nothing of the credential leaks through the error.
        assert "nobody" not in response.text
        assert "127.0.0.1" not in response.text
    with signed_in(unreachable.url, viewer) as browser:
        page = browser.get("/analytics")
        assert page.status_code == 503
        assert "analytics database is unreachable" in page.text
        assert browser.get("/inbox").status_code == 200


async def test_the_scope_says_so_when_the_database_cannot_be_reached() -> None:
    database = Database(UNREACHABLE, pool_size=1)
    try:
        with pytest.raises(AnalyticsUnavailable):
            async with analytics_scope(database, uuid.uuid4()):
                raise AssertionError("no scope without a database")
    finally:
        await database.dispose()


async def _lose_between_reads(
    database: Database, admin: psycopg.AsyncConnection[object], name: str
) -> None:
    """Two reads of one scope, the database cut off and closed between them."""
    async with analytics_scope(database, uuid.uuid4()) as scope:
        await scope.session.execute(text("SELECT 1"))
        closed = sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false")
        await admin.execute(closed.format(sql.Identifier(name)))
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,),
        )
        await scope.session.execute(text("SELECT 1"))


async def test_a_database_lost_in_the_middle_of_the_reads_is_unavailable_too(
    database_url: str, postgres_admin_url: str
) -> None:
    """A replica that goes away between two reads of one request (its connections cut, new
    ones refused) gives the same 503 as one that was never reached."""
    name = database_url.rsplit("/", 1)[1].split("?", 1)[0]
    database = Database(database_url, pool_size=1)
    admin = await psycopg.AsyncConnection.connect(libpq_url(postgres_admin_url), autocommit=True)
    try:
        with pytest.raises(AnalyticsUnavailable):
            await _lose_between_reads(database, admin, name)
    finally:
        opened = sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true")
        await admin.execute(opened.format(sql.Identifier(name)))
        await admin.close()
        await database.dispose()


async def _timed_out_read(database: Database) -> None:
    async with analytics_scope(database, uuid.uuid4()) as scope:
        await scope.session.execute(text("SET LOCAL statement_timeout = 10"))
        await scope.session.execute(text("SELECT pg_sleep(1)"))


async def test_an_error_of_a_database_that_still_answers_is_not_hidden(
    database: Database,
) -> None:
    """A read cancelled by its statement timeout is an OperationalError too, but the
    database is there: the error stays what it is."""
    with pytest.raises(OperationalError, match="statement timeout"):
        await _timed_out_read(database)
