"""`cybergine audit verify`: exit 0 with the count on an intact trail, 1 naming the entry
where it breaks."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from cybergine.cli import cli
from cybergine.db.engine import Database
from cybergine.privacy import audit, keys
from cybergine.privacy.audit import Actor

runner = CliRunner()


@pytest.fixture
def env(database_url: str, server_keys: keys.ServerKeys) -> Iterator[dict[str, str | None]]:
    yield {
        "CYBERGINE_DATABASE_URL": database_url,
        "CYBERGINE_SECRET_KEY": server_keys.secret_key.decode(),
        "CYBERGINE_ENCRYPTION_KEYS": server_keys.encryption_keys[0],
        "CYBERGINE_LOG_LEVEL": "WARNING",
    }
    # The command installs the keys it loads process-wide.
    keys.install(server_keys)


# The CLI runs its own event loop, so these tests are synchronous and reach the
# database through loops of their own.
def record_entries(database_url: str, count: int) -> None:
    async def main() -> None:
        database = Database(database_url, pool_size=1)
        try:
            async with database.transaction() as session:
                for number in range(count):
                    await audit.record(
                        session,
                        action="test.event.recorded",
                        actor=Actor.system("tests"),
                        details={"n": number},
                    )
        finally:
            await database.dispose()

    asyncio.run(main())


def tamper(database_url: str, statement: str) -> None:
    async def main() -> None:
        database = Database(database_url, pool_size=1)
        try:
            async with database.transaction() as session:
                await session.execute(text("SET LOCAL cybergine.audit_maintenance = 'on'"))
                await session.execute(text(statement))
        finally:
            await database.dispose()

    asyncio.run(main())


def test_an_intact_trail_verifies(database_url: str, env: dict[str, str | None]) -> None:
    record_entries(database_url, 4)
    result = runner.invoke(cli, ["audit", "verify"], env=env)
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == "audit trail intact: 4 entries"


def test_an_empty_trail_verifies(env: dict[str, str | None]) -> None:
    result = runner.invoke(cli, ["audit", "verify"], env=env)
    assert result.exit_code == 0, result.output
    assert "audit trail intact: 0 entries" in result.stdout


def test_a_tampered_trail_fails_naming_the_entry(
    database_url: str, env: dict[str, str | None]
) -> None:
    record_entries(database_url, 4)
    tamper(database_url, "UPDATE audit_events SET details = '{\"n\": 7}' WHERE seq = 2")
    result = runner.invoke(cli, ["audit", "verify"], env=env)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    assert result.stderr.startswith("audit trail broken at entry 2: ")


def test_a_deleted_entry_is_named(database_url: str, env: dict[str, str | None]) -> None:
    record_entries(database_url, 4)
    tamper(database_url, "DELETE FROM audit_events WHERE seq = 3")
    result = runner.invoke(cli, ["audit", "verify"], env=env)
    assert result.exit_code == 1, result.output
    assert result.stderr.strip() == "audit trail broken at entry 3: entry 3 is missing"


def test_another_secret_key_fails_at_the_first_entry(
    database_url: str, env: dict[str, str | None]
) -> None:
    record_entries(database_url, 2)
    other = {**env, "CYBERGINE_SECRET_KEY": keys.generate_secret_key()}
    result = runner.invoke(cli, ["audit", "verify"], env=other)
    assert result.exit_code == 1, result.output
    assert "audit trail broken at entry 1: " in result.stderr


def test_missing_keys_are_a_readable_error(env: dict[str, str | None]) -> None:
    result = runner.invoke(cli, ["audit", "verify"], env={**env, "CYBERGINE_SECRET_KEY": None})
    assert result.exit_code == 2, result.output
    assert "CYBERGINE_SECRET_KEY" in result.stderr


def test_audit_appears_in_help() -> None:
    result = runner.invoke(cli, ["audit", "--help"])
    assert result.exit_code == 0
    assert "verify" in result.output
