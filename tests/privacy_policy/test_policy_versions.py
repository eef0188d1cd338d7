"""Policy §18: the operator records a new version of the privacy policy with its
effective date (`cybergine policy add-version`); a date closer than 30 days is refused;
every staff user is e-mailed and sees a notice in the dashboard until they acknowledge
it; the API lists the versions."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from cybergine.accounts.models import Role
from cybergine.cli import cli
from cybergine.db.engine import Database
from cybergine.errors import InvalidInput
from cybergine.mail.models import OutboundEmail
from cybergine.privacy import audit, keys
from cybergine.privacy.audit import AuditEvent
from cybergine.privacy_policy import service
from cybergine.privacy_policy.models import PolicyVersion
from tests.support.browser import Browser
from tests.support.factories import (
    PASSWORD,
    add_member,
    make_api_key,
    make_organisation,
    make_user,
)
from tests.support.mailbox import emails_to
from tests.support.server import LiveServer

T = TypeVar("T")
runner = CliRunner()
URL = "https://cybergine.example/privacy/2027"
SUMMARY = "We add a sub-processor for e-mail delivery."
OPERATOR = audit.Actor.system("operator")


def _today() -> date:
    return datetime.now(UTC).date()


@pytest.fixture
def env(database_url: str, server_keys: keys.ServerKeys) -> Iterator[dict[str, str | None]]:
    yield {
        "CYBERGINE_DATABASE_URL": database_url,
        "CYBERGINE_SECRET_KEY": server_keys.secret_key.decode(),
        "CYBERGINE_ENCRYPTION_KEYS": server_keys.encryption_keys[0],
        "CYBERGINE_LOG_LEVEL": "WARNING",
    }
    keys.install(server_keys)


def _in_database(database_url: str, work: Callable[[Database], Awaitable[T]]) -> T:
    async def main() -> T:
        database = Database(database_url, pool_size=1)
        try:
            return await work(database)
        finally:
            await database.dispose()

    return asyncio.run(main())


async def _counts(database: Database) -> tuple[int, int]:
    async with database.transaction() as session:
        versions = await session.scalar(select(func.count()).select_from(PolicyVersion))
        emails = await session.scalar(select(func.count()).select_from(OutboundEmail))
    return int(versions or 0), int(emails or 0)


def test_the_operator_adds_a_version_and_every_user_is_e_mailed(
    env: dict[str, str | None], database_url: str
) -> None:
    async def seed(database: Database) -> list[str]:
        organisation, owner = await make_organisation(database)
        agent, _ = await add_member(database, organisation.id, Role.AGENT)
        _, other_owner = await make_organisation(database, name="Other")
        alone = await make_user(database)  # in no organisation any more: still told
        return [owner.email, agent.email, other_owner.email, alone.email]

    addresses = _in_database(database_url, seed)
    effective = (_today() + timedelta(days=30)).isoformat()
    arguments = ["policy", "add-version", "--effective", effective, "--url", URL]
    result = runner.invoke(cli, [*arguments, "--summary", SUMMARY], env=env)
    assert result.exit_code == 0, result.output
    assert f"takes effect on {effective}; 4 users" in result.stdout

    async def check(database: Database) -> None:
        for address in addresses:
            (email,) = await emails_to(database, address)
            assert email.subject == service.NOTICE_SUBJECT
            assert SUMMARY in (email.body_text or "")
            assert URL in (email.body_text or "")
        async with database.transaction() as session:
            entry = await session.scalar(
                select(AuditEvent).where(AuditEvent.action == service.ADDED_ACTION)
            )
        assert entry is not None
        assert entry.details == {"effective_on": effective, "notified": 4}

    _in_database(database_url, check)
    listed = runner.invoke(cli, ["policy", "versions"], env=env)
    assert listed.exit_code == 0, listed.output
    assert f"{effective}  {URL}" in listed.stdout


@pytest.mark.parametrize(
    ("effective", "url", "says"),
    [
        (29, URL, "at least 30 days"),
        (0, URL, "at least 30 days"),
        (-3, URL, "at least 30 days"),
        ("2027-02-30", URL, "not a date"),
        (40, "http://cybergine.example/privacy", "https://"),
        (40, "https://user:pw@cybergine.example/privacy", "https://"),
    ],
)
def test_a_date_closer_than_30_days_or_a_bad_url_is_refused(
    env: dict[str, str | None], database_url: str, effective: int | str, url: str, says: str
) -> None:
    _in_database(database_url, make_user)
    when = (
        effective
        if isinstance(effective, str)
        else (_today() + timedelta(days=effective)).isoformat()
    )
    arguments = ["policy", "add-version", "--effective", when, "--url", url]
    result = runner.invoke(cli, [*arguments, "--summary", SUMMARY], env=env)
    assert result.exit_code == 1
    assert says in result.stderr
    if isinstance(effective, int) and effective < 30:
        earliest = (_today() + timedelta(days=30)).isoformat()
        assert f"choose {earliest} or later" in result.stderr
    assert _in_database(database_url, _counts) == (0, 0)  # nothing recorded, no e-mail


async def test_the_refusal_is_the_services_own(database: Database) -> None:
    today = date(2027, 1, 1)
    async with database.transaction() as session:
        with pytest.raises(InvalidInput, match="2027-01-31 or later"):
            await service.add_version(
                session,
                effective_on=date(2027, 1, 30),
                url=URL,
                summary=SUMMARY,
                public_url="http://localhost",
                actor=OPERATOR,
                today=today,
            )
        added = await service.add_version(
            session,
            effective_on=date(2027, 1, 31),
            url=URL,
            summary=SUMMARY,
            public_url="http://localhost",
            actor=OPERATOR,
            today=today,
        )
    assert added.effective_on == date(2027, 1, 31)


async def _add(database: Database, summary: str = SUMMARY) -> PolicyVersion:
    async with database.transaction() as session:
        return await service.add_version(
            session,
            effective_on=_today() + timedelta(days=31),
            url=URL,
            summary=summary,
            public_url="http://localhost",
            actor=OPERATOR,
        )


async def test_every_user_sees_the_notice_until_they_acknowledge_it(
    live_server: LiveServer, database: Database
) -> None:
    organisation, owner = await make_organisation(database)
    agent, _ = await add_member(database, organisation.id, Role.AGENT)
    first = await _add(database)
    effective = first.effective_on

    owner_browser, agent_browser = Browser(live_server.url), Browser(live_server.url)
    try:
        owner_browser.sign_in(owner.email, PASSWORD)
        agent_browser.sign_in(agent.email, PASSWORD)
        for browser in (owner_browser, agent_browser):
            page = browser.get("/inbox")
            assert 'data-testid="policy-notice"' in page.text
            assert f"changes on {effective.day} {effective:%B %Y}" in page.text
            assert SUMMARY in page.text

        acknowledged = owner_browser.post(
            "/privacy-policy/acknowledge",
            {"version_id": str(first.id), "next": "/inbox"},
            csrf_from="/inbox",
        )
        assert acknowledged.status_code == 303
        assert acknowledged.headers["location"] == "/inbox"
        assert 'data-testid="policy-notice"' not in owner_browser.get("/").text
        assert 'data-testid="policy-notice"' in agent_browser.get("/").text  # theirs is theirs

        # A newer version is news again, and acknowledging the older one again does
        # not hide it.
        second = await _add(database, summary="We shorten how long usage logs are kept.")
        assert "usage logs" in owner_browser.get("/").text
        owner_browser.post(
            "/privacy-policy/acknowledge", {"version_id": str(first.id)}, csrf_from="/"
        )
        assert "usage logs" in owner_browser.get("/").text
        owner_browser.post(
            "/privacy-policy/acknowledge", {"version_id": str(second.id)}, csrf_from="/"
        )
        assert 'data-testid="policy-notice"' not in owner_browser.get("/").text

        unknown = owner_browser.post(
            "/privacy-policy/acknowledge", {"version_id": "not-an-id"}, csrf_from="/"
        )
        assert unknown.status_code == 404
    finally:
        owner_browser.close()
        agent_browser.close()


async def test_the_api_lists_the_versions(live_server: LiveServer, database: Database) -> None:
    organisation, _ = await make_organisation(database)
    key = await make_api_key(database, organisation.id, Role.VIEWER)
    version = await _add(database)
    with live_server.client(headers={"authorization": f"Bearer {key}"}) as api:
        response = api.get("/api/v1/privacy-policy/versions")
    assert response.status_code == 200, response.text
    listed: list[dict[str, Any]] = response.json()
    assert [
        (v["id"], v["effective_on"], v["url"], v["summary"], v["in_effect"]) for v in listed
    ] == [(str(version.id), version.effective_on.isoformat(), URL, SUMMARY, False)]
    with live_server.client() as anonymous:
        assert anonymous.get("/api/v1/privacy-policy/versions").status_code == 401


async def test_the_dashboard_lists_the_versions_even_without_an_organisation(
    live_server: LiveServer, database: Database
) -> None:
    _, owner = await make_organisation(database)
    alone = await make_user(database)
    version = await _add(database)
    for email in (owner.email, alone.email):
        browser = Browser(live_server.url)
        try:
            browser.sign_in(email, PASSWORD)
            page = browser.get("/privacy-policy")
            assert page.status_code == 200
            assert page.text.count('data-testid="policy-version"') == 1
            assert SUMMARY in page.text
            assert f'href="{URL}"' in page.text
            assert f"{version.effective_on.day} {version.effective_on:%B %Y}" in page.text
            assert "upcoming" in page.text
        finally:
            browser.close()
