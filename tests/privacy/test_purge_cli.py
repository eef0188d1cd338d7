"""`cybergine privacy purge`: the dry run prints what would go per organisation and class
and removes nothing; without it, it purges; a later date than now needs --dry-run."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from cybergine.cli import cli
from cybergine.conversations.models import Message
from cybergine.db.engine import Database
from cybergine.privacy import keys, purge
from cybergine.privacy.audit import AuditEvent
from cybergine.privacy.retention_settings import RetentionSettings
from tests.support.conversations import make_conversation, make_customer, make_message
from tests.support.factories import make_organisation

runner = CliRunner()


@pytest.fixture
def env(database_url: str, server_keys: keys.ServerKeys) -> Iterator[dict[str, str | None]]:
    yield {
        "CYBERGINE_DATABASE_URL": database_url,
        "CYBERGINE_SECRET_KEY": server_keys.secret_key.decode(),
        "CYBERGINE_ENCRYPTION_KEYS": server_keys.encryption_keys[0],
        "CYBERGINE_LOG_LEVEL": "WARNING",
    }
    keys.install(server_keys)


def _in_database(database_url: str, work: object) -> object:
    async def main() -> object:
        database = Database(database_url, pool_size=1)
        try:
            return await work(database)  # type: ignore[operator]
        finally:
            await database.dispose()

    return asyncio.run(main())


def seed(database_url: str) -> uuid.UUID:
    """A shop keeping conversations 30 days, with one 20 days quiet (two messages)."""

    async def work(database: Database) -> uuid.UUID:
        shop, _ = await make_organisation(database, name="Corner Shop")
        quiet = datetime.now(UTC) - timedelta(days=20)
        async with database.transaction() as session:
            session.add(RetentionSettings(organisation_id=shop.id, conversation_days=30))
            customer = await make_customer(session, shop.id, created_at=quiet, updated_at=quiet)
            conversation = await make_conversation(
                session, shop.id, customer=customer, last_message_at=quiet, created_at=quiet
            )
            for number in range(2):
                await make_message(session, conversation, text=f"m{number}", created_at=quiet)
        return shop.id

    result = _in_database(database_url, work)
    assert isinstance(result, uuid.UUID)
    return result


def counts(database_url: str) -> tuple[int, int]:
    """Messages, and the purge's audit entries."""

    async def work(database: Database) -> tuple[int, int]:
        async with database.transaction() as session:
            messages = await session.scalar(select(func.count()).select_from(Message))
            entries = await session.scalar(
                select(func.count()).where(AuditEvent.action == purge.AUDIT_ACTION)
            )
        return int(messages or 0), int(entries or 0)

    result = _in_database(database_url, work)
    assert isinstance(result, tuple)
    return result


def test_dry_run_as_of_a_later_date_prints_what_would_go(
    database_url: str, env: dict[str, str | None]
) -> None:
    shop = seed(database_url)
    now = runner.invoke(cli, ["privacy", "purge", "--dry-run"], env=env)
    assert now.exit_code == 0, now.output
    assert now.stdout.strip().splitlines()[-1] == "nothing to purge"

    later = (datetime.now(UTC) + timedelta(days=15)).date().isoformat()
    result = runner.invoke(cli, ["privacy", "purge", "--dry-run", "--as-of", later], env=env)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    assert lines[0] == f"retention purge as of {later}T00:00:00+00:00"
    assert lines[1:] == [
        f"organisation {shop} (Corner Shop): conversation: would remove "
        "1 conversations, 1 customers, 2 messages"
    ]
    assert counts(database_url) == (2, 0)


def test_purge_removes_and_audits_once(database_url: str, env: dict[str, str | None]) -> None:
    shop = seed(database_url)
    earlier = (datetime.now(UTC) - timedelta(days=5)).isoformat()
    # As of 5 days ago the conversation was 15 days quiet: nothing goes.
    assert (
        "nothing to purge"
        in runner.invoke(cli, ["privacy", "purge", "--as-of", earlier], env=env).stdout
    )

    # Move the shop's period below the conversation's quiet time, then purge for real.
    async def shorten(database: Database) -> None:
        async with database.transaction() as session:
            settings = (
                await session.scalars(
                    select(RetentionSettings).where(RetentionSettings.organisation_id == shop)
                )
            ).one()
            settings.conversation_days = 10

    _in_database(database_url, shorten)
    result = runner.invoke(cli, ["privacy", "purge"], env=env)
    assert result.exit_code == 0, result.output
    assert f"organisation {shop} (Corner Shop): conversation: removed 1 conversations" in (
        result.stdout
    )
    assert counts(database_url) == (0, 1)

    again = runner.invoke(cli, ["privacy", "purge"], env=env)
    assert again.stdout.strip().splitlines()[-1] == "nothing to purge"
    assert counts(database_url) == (0, 1)

    verify = runner.invoke(cli, ["audit", "verify"], env=env)
    assert verify.exit_code == 0, verify.output


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--as-of", "2999-01-01"], "a purge as of a later date than now needs --dry-run"),
        (["--dry-run", "--as-of", "next tuesday"], "is not a date like 2026-12-31"),
    ],
)
def test_bad_dates_are_refused_readably(
    env: dict[str, str | None], arguments: list[str], message: str
) -> None:
    result = runner.invoke(cli, ["privacy", "purge", *arguments], env=env)
    assert result.exit_code == 2
    assert message in result.stderr
