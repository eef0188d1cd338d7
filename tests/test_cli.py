import json

import psycopg
from typer.testing import CliRunner

from cybergine.cli import cli
from cybergine.db.urls import libpq_url

runner = CliRunner()


def test_help_lists_every_command() -> None:
    result = runner.invoke(cli, ["--help"])
    assert result.exit_code == 0
    for command in ("serve", "worker", "migrate", "demo"):
        assert command in result.output
    assert "CYBERGINE_DATABASE_URL" in result.output


def test_serve_help_documents_its_options() -> None:
    result = runner.invoke(cli, ["serve", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--data-dir"):
        assert option in result.output


def test_invalid_port_is_refused_with_a_readable_message() -> None:
    result = runner.invoke(cli, ["serve", "--port", "70000"])
    assert result.exit_code == 2
    assert "65535" in result.output


def test_demo_is_idempotent(database_url: str, key_env: dict[str, str]) -> None:
    env = {"CYBERGINE_DATABASE_URL": database_url, "CYBERGINE_LOG_LEVEL": "WARNING", **key_env}
    first = runner.invoke(cli, ["demo"], env=env)
    second = runner.invoke(cli, ["demo"], env=env)
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert "created" in first.output
    assert "already present" in second.output
    first_id = first.output.split(": ")[1].split()[0]
    assert first_id in second.output
    assert "demo@cybergine.example" in first.output
    # The demo shop: an assistant, its FAQ and a WhatsApp number, seeded once.
    with psycopg.connect(libpq_url(database_url)) as conn:
        counts = [
            conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]
            for table in ("assistants", "kb_items", "whatsapp_numbers", "organisations")
        ]
    assert counts == [1, 8, 1, 1]
    # Its weeks of history are in the partitions of their months, none in the default.
    with psycopg.connect(libpq_url(database_url)) as conn:
        where = dict(
            conn.execute(  # type: ignore[arg-type]
                "SELECT tableoid::regclass::text, count(*) FROM messages GROUP BY 1"
            ).fetchall()
        )
    assert where, "the demo wrote no history"
    assert "messages_default" not in where


def test_org_create_prints_the_organisation_and_a_working_key(
    database_url: str, key_env: dict[str, str]
) -> None:
    env = {"CYBERGINE_DATABASE_URL": database_url, **key_env}
    result = runner.invoke(
        cli,
        [
            "org",
            "create",
            "Fresh Flowers",
            "--owner-email",
            "flo@example.com",
            "--owner-password",
            "a good long password",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output
    created = json.loads(result.output)
    assert set(created) == {"organisation_id", "api_key"}
    assert created["api_key"].startswith("cg_")

    again = runner.invoke(
        cli,
        [
            "org",
            "create",
            "Second Shop",
            "--owner-email",
            "flo@example.com",
            "--owner-password",
            "not her password",
        ],
        env=env,
    )
    assert again.exit_code == 1
    assert "password" in again.output


def test_server_refuses_to_start_without_keys_outside_embedded_mode(database_url: str) -> None:
    result = runner.invoke(
        cli, ["serve", "--port", "1"], env={"CYBERGINE_DATABASE_URL": database_url}
    )
    assert result.exit_code == 2
    assert "CYBERGINE_SECRET_KEY" in result.output


def _rows_per_organisation(database_url: str) -> dict[str, tuple[int, int, int]]:
    """Organisation name → (assistants, knowledge items, WhatsApp numbers)."""
    with psycopg.connect(libpq_url(database_url)) as conn:
        rows = conn.execute(
            """
            SELECT o.name,
                   (SELECT count(*) FROM assistants a WHERE a.organisation_id = o.id),
                   (SELECT count(*) FROM kb_items i WHERE i.organisation_id = o.id),
                   (SELECT count(*) FROM whatsapp_numbers n WHERE n.organisation_id = o.id)
              FROM organisations o
            """
        ).fetchall()
    return {name: (assistants, items, numbers) for name, assistants, items, numbers in rows}


def _demo_account_creates(name: str, env: dict[str, str]) -> None:
    """The demo account starts another organisation (named to sort before "Demo Shop")."""
    result = runner.invoke(
        cli,
        [
            "org",
            "create",
            name,
            "--owner-email",
            "demo@cybergine.example",
            "--owner-password",
            "demo-password",
        ],
        env=env,
    )
    assert result.exit_code == 0, result.output


def test_demo_writes_only_into_the_demo_organisation(
    database_url: str, key_env: dict[str, str]
) -> None:
    env = {"CYBERGINE_DATABASE_URL": database_url, "CYBERGINE_LOG_LEVEL": "WARNING", **key_env}
    first = runner.invoke(cli, ["demo"], env=env)
    assert first.exit_code == 0, first.output
    demo_id = first.output.split(": ")[1].split()[0]
    _demo_account_creates("Acme Outlet", env)

    again = runner.invoke(cli, ["demo"], env=env)

    assert again.exit_code == 0, again.output
    assert f"already present: {demo_id}" in again.output
    assert _rows_per_organisation(database_url) == {
        "Demo Shop": (1, 8, 1),
        "Acme Outlet": (0, 0, 0),
    }


def test_demo_leaves_an_organisation_the_demo_account_joined_first_untouched(
    database_url: str, key_env: dict[str, str]
) -> None:
    env = {"CYBERGINE_DATABASE_URL": database_url, "CYBERGINE_LOG_LEVEL": "WARNING", **key_env}
    _demo_account_creates("Acme Outlet", env)

    result = runner.invoke(cli, ["demo"], env=env)

    assert result.exit_code == 0, result.output
    assert "Demo organisation created" in result.output
    assert _rows_per_organisation(database_url) == {
        "Demo Shop": (1, 8, 1),
        "Acme Outlet": (0, 0, 0),
    }
