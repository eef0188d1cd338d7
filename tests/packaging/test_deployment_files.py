"""The self-hosting files at the repository's root: `.env.example` names every setting the
platform reads (and nothing it does not), its values load; `compose.yaml` runs the roles
the contract promises, from that file, with no secret of its own; the Dockerfile's
roles are commands the CLI has."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]
from typer.main import get_command

from cybergine.cli import cli
from cybergine.db.embedded import SERVER_SETTINGS
from cybergine.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / ".env.example"
COMPOSE = ROOT / "compose.yaml"
DOCKERFILE = ROOT / "Dockerfile"
HEALTHCHECK = ROOT / "deploy" / "docker" / "healthcheck.py"

# `KEY=value`, or the same commented out (`# KEY=value`: the default, shown).
ASSIGNMENT = re.compile(r"^(?P<commented>#\s*)?(?P<name>[A-Z][A-Z0-9_]*)=(?P<value>.*)$")


def assignments() -> list[tuple[str, str, bool]]:
    """(name, value, active) for each assignment line of .env.example."""
    found = []
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        match = ASSIGNMENT.match(line.strip())
        if match:
            found.append((match["name"], match["value"], not match["commented"]))
    return found


def setting_names() -> set[str]:
    return {f"CYBERGINE_{name.upper()}" for name in Settings.model_fields}


def test_env_example_names_every_setting_and_only_settings() -> None:
    named = {name for name, _, _ in assignments() if name.startswith("CYBERGINE_")}
    assert sorted(setting_names() - named) == [], "settings missing from .env.example"
    assert sorted(named - setting_names()) == [], "names in .env.example that nothing reads"


def test_env_example_names_each_setting_once() -> None:
    names = [name for name, _, _ in assignments()]
    assert sorted({name for name in names if names.count(name) > 1}) == []


def test_env_example_values_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """Its active lines, and each shown default, are values the settings accept."""
    for name in setting_names():
        monkeypatch.delenv(name, raising=False)
    for name, value, active in assignments():
        if name.startswith("CYBERGINE_") and active:
            monkeypatch.setenv(name, value)
    settings = Settings()
    assert settings.database_url is not None
    assert settings.behind_https is True
    for name, value, active in assignments():
        if name.startswith("CYBERGINE_") and not active and value:
            with monkeypatch.context() as shown:
                shown.setenv(name, value)
                Settings()


def test_env_example_holds_no_real_secret() -> None:
    """Every key and password line is a placeholder that says it must be replaced."""
    for name, value, active in assignments():
        secret = any(word in name for word in ("KEY", "SECRET", "PASSWORD", "TOKEN"))
        if active and secret:
            assert "REQUIRED" in value, name


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    return loaded


def role(service: dict[str, Any]) -> str:
    command = service.get("command") or ["serve"]
    return str(command[0])


def test_compose_runs_the_roles_from_one_image_and_the_env_file() -> None:
    services = compose()["services"]
    platform = {name: s for name, s in services.items() if s.get("env_file") == ".env"}
    roles = sorted(role(service) for service in platform.values())
    assert roles == ["migrate", "serve", "serve", "worker", "worker"]
    assert len({service["image"] for service in platform.values()}) == 1
    for name, service in platform.items():
        assert "environment" not in service, f"{name}: settings come from .env only"
        if role(service) != "migrate":
            assert service["depends_on"] == {
                "migrate": {"condition": "service_completed_successfully"}
            }, name
    assert services["migrate"]["depends_on"]["db"]["condition"] == "service_healthy"
    assert "pgvector" in services["db"]["image"]


def test_compose_runs_the_workers_on_the_cpu_the_web_leaves() -> None:
    platform = [s for s in compose()["services"].values() if s.get("env_file") == ".env"]
    default_shares = 1024  # what a container has unless it says otherwise
    for service in platform:
        if role(service) == "worker":
            assert service["cpu_shares"] < default_shares / 8
        else:
            assert "cpu_shares" not in service


def test_the_bundled_database_takes_the_settings_advised_for_every_server() -> None:
    command = compose()["services"]["db"]["command"]
    assert command[0] == "postgres"
    given = dict(option.split("=", 1) for option in command[2::2])
    assert command[1::2] == ["-c"] * len(given)
    assert given == SERVER_SETTINGS


def test_compose_names_no_secret_of_its_own() -> None:
    text = COMPOSE.read_text(encoding="utf-8")
    assert re.search(r"CYBERGINE_[A-Z_]+\s*[:=]", text) is None
    # The database password is interpolated from .env, never written here.
    assert compose()["services"]["db"]["environment"]["POSTGRES_PASSWORD"].startswith("${")


def test_the_proxy_address_is_the_trusted_one() -> None:
    proxy = compose()["services"]["proxy"]
    address = proxy["networks"]["backend"]["ipv4_address"]
    trusted = {name: value for name, value, active in assignments() if active}
    assert trusted["CYBERGINE_TRUSTED_PROXIES"] == address


def test_the_image_roles_are_commands_of_the_cli() -> None:
    commands = set(get_command(cli).commands)  # type: ignore[attr-defined]
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r'^ENTRYPOINT \["tini", "--", "cybergine"\]$', text, re.M)
    assert re.search(r'^CMD \["serve", "--host", "0.0.0.0", "--port", "8000"\]$', text, re.M)
    assert {"serve", "worker", "migrate"} <= commands
    assert {
        role(service) for service in compose()["services"].values() if "env_file" in service
    } <= commands
    # The final stage runs as the unprivileged user, with a health check.
    final = text.rsplit("\nFROM ", 1)[1]
    assert re.search(r"^USER cybergine", final, re.M)
    assert re.search(r"^HEALTHCHECK ", final, re.M)
    assert not re.search(r"\b(gcc|build-essential|python3-dev)\b", final)


def load_healthcheck() -> Any:
    spec = importlib.util.spec_from_file_location("healthcheck", HEALTHCHECK)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize(
    ("pid_1", "url"),
    [
        (
            ["tini", "--", "cybergine", "serve", "--host", "0.0.0.0", "--port", "8000"],  # noqa: S104
            "http://127.0.0.1:8000/readyz",
        ),
        (
            ["tini", "--", "/opt/cybergine/bin/cybergine", "serve", "--port=9000"],
            "http://127.0.0.1:9000/readyz",
        ),
        (["tini", "--", "cybergine", "serve", "--host", "::1"], "http://[::1]:8000/readyz"),
        (["tini", "--", "cybergine", "worker"], None),
        (["tini", "--", "cybergine", "migrate"], None),
        (["tini", "--", "cybergine"], None),
        (["sh"], None),
    ],
)
def test_the_health_check_asks_readyz_of_the_web_role_only(
    pid_1: list[str], url: str | None
) -> None:
    assert load_healthcheck().readiness_url(pid_1) == url
