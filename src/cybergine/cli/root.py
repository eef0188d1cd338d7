"""The root of the ``cybergine`` command, and what its commands share: the data
directory option, the settings, the server keys and the database URL."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from pydantic import ValidationError

from cybergine.privacy.keys import ServerKeys
from cybergine.settings import Settings, load_settings

cli = typer.Typer(
    name="cybergine",
    help=(
        "Cybergine: AI customer service on WhatsApp and web chat.\n\n"
        "With CYBERGINE_DATABASE_URL unset, every command uses the embedded PostgreSQL "
        "in the data directory (CYBERGINE_DATA_DIR, default ./var)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DataDirOption = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="Data directory for the embedded database (overrides CYBERGINE_DATA_DIR).",
        file_okay=False,
    ),
]


def report(problems: Sequence[object], who: str) -> None:
    """List what is wrong in the configuration (``cybergine check``'s words)."""
    typer.echo(f"{who}: {len(problems)} problem(s) in the configuration:", err=True)
    for problem in problems:
        typer.echo(f"  - {problem}", err=True)


def refuse(problems: Sequence[object], who: str) -> NoReturn:
    """List the problems, then exit 2."""
    report(problems, who)
    typer.echo("Fix them, then run `cybergine check` to see that nothing is left.", err=True)
    raise typer.Exit(2)


def settings_for(data_dir: Path | None = None) -> Settings:
    """The settings, with ``--data-dir`` over the environment; logging set up by them.
    A setting that does not parse: exit 2, each one named."""
    from cybergine.logging import configure_logging

    try:
        settings = load_settings(**({"data_dir": data_dir} if data_dir else {}))
    except ValidationError as error:
        from cybergine.ops.check import settings_problems

        refuse(settings_problems(error), "cybergine")
    configure_logging(settings.log_level, settings.log_format)
    return settings


def load_keys(settings: Settings) -> ServerKeys:
    """Install the server keys, or exit 2 with the reason (missing, malformed)."""
    from cybergine.privacy import keys

    try:
        return keys.load(settings)
    except keys.KeyConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


def database_url(settings: Settings, *, migrate: bool) -> str:
    """The database to use (the embedded one started if it is that), migrated first when
    ``migrate``."""
    from cybergine.db import migrate as migrations
    from cybergine.runtime import resolve_database_url

    url = resolve_database_url(settings)
    if migrate:
        migrations.upgrade(url)
    return url
