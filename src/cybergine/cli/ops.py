"""Operations: ``cybergine check``, ``backup`` and ``restore``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from cybergine.cli.root import (
    DataDirOption,
    cli,
    database_url,
    load_keys,
    refuse,
    report,
    settings_for,
)
from cybergine.settings import Settings

EMBEDDED_ONLY = (
    "error: `cybergine {command}` is for embedded mode (CYBERGINE_DATABASE_URL unset). With "
    "an external PostgreSQL, back it up with its own tools (base backups and WAL archiving) "
    "and keep CYBERGINE_SECRET_KEY and CYBERGINE_ENCRYPTION_KEYS beside it: see "
    "docs/operations.md."
)


@cli.command()
def backup(
    path: Annotated[Path, typer.Argument(help="The archive to write (it must not exist).")],
    data_dir: DataDirOption = None,
) -> None:
    """Embedded mode: write the database and the key file to one archive, with a manifest
    of their SHA-256 sums. It can run while `serve` and workers are running."""
    from cybergine.ops import backup as backups

    settings = settings_for(data_dir)
    if not settings.embedded:
        typer.echo(EMBEDDED_ONLY.format(command="backup"), err=True)
        raise typer.Exit(2)
    url = database_url(settings, migrate=False)
    try:
        manifest = backups.create(settings, url, path.resolve())
    except backups.BackupError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    for part in manifest.parts:
        typer.echo(f"  {part.name}: {part.bytes} bytes, sha256 {part.sha256}")
    typer.echo(f"backup written: {path} (migration {manifest.migration})")
    if backups.KEYS not in {part.name for part in manifest.parts}:
        typer.echo("warning: no key file in the data directory, so no keys in the backup", err=True)
    for name in manifest.keys_from_environment:
        typer.echo(
            f"warning: {name} comes from the environment and is not in the backup: keep it "
            "with the backup, the data cannot be used without it",
            err=True,
        )
    typer.echo("The archive holds the server keys: store it as you would store them.")


@cli.command()
def restore(
    path: Annotated[Path, typer.Argument(help="An archive `cybergine backup` wrote.")],
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Restore into a data directory that has a database or key file; they are "
            "moved aside (to replaced-<time>/ in the data directory), not deleted.",
        ),
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Embedded mode: restore a backup into an empty data directory (stop `serve` and
    workers first). Every part is checked against the manifest before anything changes."""
    from cybergine.ops import backup as backups

    settings = settings_for(data_dir)
    if not settings.embedded:
        typer.echo(EMBEDDED_ONLY.format(command="restore"), err=True)
        raise typer.Exit(2)
    try:
        restored = backups.restore(settings.data_dir, path.resolve(), force=force)
    except backups.BackupError as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    if restored.moved_aside is not None:
        typer.echo(f"what the data directory held was moved to {restored.moved_aside}")
    manifest = restored.manifest
    typer.echo(
        f"restored the backup of {manifest.created_at} (Cybergine {manifest.cybergine}, "
        f"migration {manifest.migration}) into {settings.data_dir}"
    )
    for name in manifest.keys_from_environment:
        typer.echo(f"note: set {name} as it was when the backup was made", err=True)
    typer.echo("Next: `cybergine audit verify`, then `cybergine serve` (it migrates if needed).")


def ready_to_start(settings: Settings, command: str) -> str:
    """What ``serve`` and ``worker`` do first: the checks of ``cybergine check`` (but the
    tenants' model endpoints). Then the keys are loaded and the database is resolved (the
    embedded one started and migrated): its URL. Else exit 2, listing every problem.

    An external database that is not reachable or not migrated yet stops a worker, but
    not ``serve``: it starts with ``/readyz`` answering 503 until the database is ready,
    so web processes may start before the release's ``cybergine migrate`` has run (the
    load balancer sends them nothing meanwhile). It says so on stderr."""
    from cybergine.ops.check import Problem, configuration_problems, database_problems

    problems = configuration_problems(settings)
    waiting: list[Problem] = []
    try:
        url = database_url(settings, migrate=settings.embedded)
    except Exception as error:  # the embedded server or a migration failed: say which
        problems.append(Problem("database", f"could not be started or migrated: {error}"))
    else:
        found = asyncio.run(database_problems(settings, url))
        if command == "serve" and not settings.embedded:
            waiting = found
        else:
            problems += found
    for problem in waiting:
        typer.echo(f"warning: {problem} (/readyz answers 503 until then)", err=True)
    if problems:
        refuse(problems, f"`cybergine {command}` will not start")
    if command == "serve":
        _say_what_the_analytics_database_is(settings, url)
    load_keys(settings)
    return url


def _say_what_the_analytics_database_is(settings: Settings, url: str) -> None:
    """``serve`` with ``CYBERGINE_ANALYTICS_DATABASE_URL``: what ``cybergine check`` finds
    there, said as warnings. It does not stop the start: only analytics read the replica,
    and they answer 503 while it cannot be read (everything else works)."""
    from cybergine.ops.check import analytics_database_check

    if settings.analytics_database_url is None:
        return
    found = asyncio.run(analytics_database_check(settings, url))
    for problem in found.problems:
        typer.echo(f"warning: {problem} (serving all the same: only analytics read it)", err=True)
    if found.warning:
        typer.echo(f"warning: {found.warning}", err=True)


@cli.command()
def check(data_dir: DataDirOption = None) -> None:
    """Check the configuration: every setting, the secrets the configured features need,
    the key file, the database (reachable, migrated), the model endpoints' URLs
    (against the outbound-URL policy) and the analytics database when one is named
    (reachable, at the primary's migration; a warning if it is no replica). Exit 1
    listing what is wrong or missing."""
    from cybergine.db.migrate import current_revision, head_revision
    from cybergine.ops.check import (
        Problem,
        analytics_database_check,
        configuration_problems,
        database_problems,
        endpoint_problems,
    )

    settings = settings_for(data_dir)  # a setting that does not parse: exit 2, listed
    problems = configuration_problems(settings)
    checked = ["settings", "keys"]
    try:
        url: str | None = database_url(settings, migrate=False)
    except Exception as error:  # the embedded server did not start
        problems.append(Problem("database", f"could not be started: {error}"))
        url = None
    if url is not None:
        found = asyncio.run(database_problems(settings, url))
        problems += found
        if not found:
            revision = current_revision(url)
            checked.append(f"database (migration {revision})")
            if revision != head_revision():
                typer.echo(
                    f"note: `cybergine serve` will migrate the database to {head_revision()}"
                )
            problems += asyncio.run(endpoint_problems(settings, url))
            checked.append("model endpoints")
    if url is not None and settings.analytics_database_url is not None:
        analytics = asyncio.run(analytics_database_check(settings, url))
        problems += analytics.problems
        if analytics.warning:
            typer.echo(f"warning: {analytics.warning}", err=True)
        if not analytics.problems:
            kind = "a read replica" if analytics.replica else "not a replica"
            checked.append(f"analytics database ({kind}, migration {analytics.revision})")
    if problems:
        report(problems, "cybergine check")
        raise typer.Exit(1)
    typer.echo(f"configuration ok: {', '.join(checked)}")
