"""``cybergine check`` names what is wrong or missing in the configuration, and ``serve``
and ``worker`` refuse to start with the same list."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cybergine.assistants.models import Assistant
from cybergine.db.engine import Database
from cybergine.db.tenancy import TenantScope
from cybergine.ops.check import (
    configuration_problems,
    database_problems,
    endpoint_problems,
)
from cybergine.settings import Settings, load_settings
from tests.support.factories import make_organisation
from tests.support.processes import CYBERGINE, clean_env


def _cybergine(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CYBERGINE, *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _external(url: str, tmp_path: Path, **settings: object) -> Settings:
    return load_settings(database_url=url, data_dir=tmp_path / "data", **settings)


async def test_a_complete_configuration_has_no_problem(
    settings: Settings, database_url: str
) -> None:
    assert configuration_problems(settings) == []
    assert await database_problems(settings, database_url) == []
    assert await endpoint_problems(settings, database_url) == []


def test_missing_secrets_are_named_with_the_way_to_make_them(tmp_path: Path) -> None:
    settings = _external(
        "postgresql://db.example/cybergine",
        tmp_path,
        shopify_api_key="client-id",
        embeddings="openai",
        behind_https=True,
        public_url="http://chat.example",
        smtp_url="mailto://nobody",
    )
    problems = {p.what: p.detail for p in configuration_problems(settings)}
    assert "cybergine keys generate" in problems["CYBERGINE_SECRET_KEY"]
    assert "cybergine keys generate" in problems["CYBERGINE_ENCRYPTION_KEYS"]
    assert "client secret" in problems["CYBERGINE_SHOPIFY_API_KEY / CYBERGINE_SHOPIFY_API_SECRET"]
    assert "needs a key" in problems["CYBERGINE_OPENAI_API_KEY"]
    assert "https://" in problems["CYBERGINE_PUBLIC_URL"]
    assert "smtp://" in problems["CYBERGINE_SMTP_URL"]


def test_a_malformed_key_and_an_unreadable_key_file_are_problems(tmp_path: Path) -> None:
    external = _external(
        "postgresql://db.example/cybergine",
        tmp_path,
        secret_key="s" * 40,
        encryption_keys="not-a-fernet-key",
    )
    assert [p.what for p in configuration_problems(external)] == ["keys"]

    embedded = load_settings(data_dir=tmp_path / "embedded")
    embedded.data_dir.mkdir(parents=True)
    (embedded.data_dir / "keys.json").write_text("{not json")
    problems = configuration_problems(embedded)
    assert [p.what for p in problems] == ["key file"]
    assert "restore it from your backup" in problems[0].detail


def test_operator_urls_must_be_http_urls(tmp_path: Path) -> None:
    settings = _external(
        "postgresql://db.example/cybergine",
        tmp_path,
        secret_key="s" * 40,
        encryption_keys="k",
        openai_base_url="api.openai.com/v1",
        whatsapp_graph_url="ftp://graph.example",
    )
    named = {p.what for p in configuration_problems(settings)}
    assert {"CYBERGINE_OPENAI_BASE_URL", "CYBERGINE_WHATSAPP_GRAPH_URL"} <= named


async def test_an_unmigrated_or_unreachable_database_is_a_problem(
    settings: Settings, empty_database_url: str
) -> None:
    (unmigrated,) = await database_problems(settings, empty_database_url)
    assert "cybergine migrate" in unmigrated.detail
    (unreachable,) = await database_problems(settings, "postgresql://nobody@127.0.0.1:1/none")
    assert "cannot be reached" in unreachable.detail


async def test_model_endpoints_are_checked_against_the_outbound_policy(
    settings: Settings, database: Database, database_url: str
) -> None:
    organisation, _ = await make_organisation(database)
    async with database.transaction() as session:
        scope = TenantScope(session, organisation.id)
        for name in ("Mia", "Max"):
            scope.add(Assistant(name=name, llm_base_url="http://10.20.30.40:11434/v1"))
    (problem,) = await endpoint_problems(settings, database_url)
    assert problem.what == "model endpoint"
    assert "http://10.20.30.40:11434/v1 (2 assistant(s))" in problem.detail

    # The operator allows that network: the endpoints pass again.
    allowed = settings.model_copy(update={"outbound_allowed_hosts": "10.0.0.0/8"})
    assert await endpoint_problems(allowed, database_url) == []


@pytest.mark.slow  # three `cybergine` processes
def test_check_and_the_refusals_of_serve_and_worker_say_the_same(
    empty_database_url: str, tmp_path: Path
) -> None:
    env = clean_env(
        CYBERGINE_DATABASE_URL=empty_database_url,
        CYBERGINE_DATA_DIR=str(tmp_path / "data"),
        CYBERGINE_ENCRYPTION_KEYS="not-a-key",
    )
    checked = _cybergine("check", env=env)
    assert checked.returncode == 1, checked.stderr
    problems = [line for line in checked.stderr.splitlines() if line.startswith("  - ")]
    assert any(line.startswith("  - CYBERGINE_SECRET_KEY: must be set") for line in problems)
    assert any("cybergine migrate" in line for line in problems)
    for command in ("serve", "worker"):
        refused = _cybergine(command, env=env)
        assert refused.returncode == 2
        assert f"`cybergine {command}` will not start" in refused.stderr
        listed = [line for line in refused.stderr.splitlines() if line.startswith("  - ")]
        if command == "worker":
            assert listed == problems
        else:
            # serve waits for a database that is not migrated yet (/readyz 503), and says
            # so; it refuses for the rest.
            assert listed == [line for line in problems if "cybergine migrate" not in line]
            warnings = [line for line in refused.stderr.splitlines() if line.startswith("warning")]
            assert any("cybergine migrate" in line for line in warnings), refused.stderr

    unparsable = _cybergine("serve", env={**env, "CYBERGINE_DB_POOL_SIZE": "lots"})
    assert unparsable.returncode == 2
    assert "  - CYBERGINE_DB_POOL_SIZE: Input should be a valid integer" in unparsable.stderr
