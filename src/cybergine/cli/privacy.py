"""Privacy from the command line: ``cybergine audit``, ``privacy`` and ``policy``."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer

from cybergine.cli.root import DataDirOption, cli, database_url, load_keys, settings_for

audit_cli = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
cli.add_typer(audit_cli, name="audit")


@audit_cli.command("verify")
def audit_verify(data_dir: DataDirOption = None) -> None:
    """Recompute the audit trail's hash chain; exit 1 at the first entry that breaks it."""
    from cybergine.db.engine import Database
    from cybergine.privacy import audit

    settings = settings_for(data_dir)
    secret_key = load_keys(settings).secret_key
    url = database_url(settings, migrate=settings.embedded)

    async def main() -> audit.VerificationResult:
        database = Database(url, pool_size=1)
        try:
            async with database.transaction() as session:
                return await audit.verify_chain(session, key=secret_key)
        finally:
            await database.dispose()

    result = asyncio.run(main())
    if not result.ok:
        typer.echo(f"audit trail broken at entry {result.first_bad_seq}: {result.reason}", err=True)
        raise typer.Exit(1)
    typer.echo(f"audit trail intact: {result.checked} entries")


privacy_cli = typer.Typer(
    help="Privacy: retention of personal data, and checking export bundles.", no_args_is_help=True
)
cli.add_typer(privacy_cli, name="privacy")


@privacy_cli.command("purge")
def privacy_purge(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would be purged; remove nothing.")
    ] = False,
    as_of: Annotated[
        str | None,
        typer.Option(
            "--as-of",
            help="Purge as on this date or time (ISO 8601, UTC unless it says otherwise); "
            "a later one than now only with --dry-run.",
        ),
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Remove what is past its retention period (privacy policy §11), per organisation
    and retention class; the periodic job does the same every hour."""
    from datetime import UTC, datetime

    from cybergine.db.engine import Database
    from cybergine.privacy import purge
    from cybergine.privacy.purging import Pace

    moment = datetime.now(UTC)
    if as_of is not None:
        try:
            moment = datetime.fromisoformat(as_of)
        except ValueError:
            typer.echo(f"error: --as-of {as_of!r} is not a date like 2026-12-31", err=True)
            raise typer.Exit(2) from None
        moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
        if moment > datetime.now(UTC) and not dry_run:
            typer.echo("error: a purge as of a later date than now needs --dry-run", err=True)
            raise typer.Exit(2)
    settings = settings_for(data_dir)
    load_keys(settings)
    url = database_url(settings, migrate=settings.embedded)

    async def main() -> purge.Report:
        database = Database(url, pool_size=1)
        try:
            return await purge.run(database, as_of=moment, dry_run=dry_run, pace=Pace.of(settings))
        finally:
            await database.dispose()

    for line in asyncio.run(main()).lines():
        typer.echo(line)


@privacy_cli.command("verify-export")
def privacy_verify_export(
    bundle: Annotated[Path, typer.Argument(help="A customer's export bundle (.zip)")],
    public_key: Annotated[
        Path | None,
        typer.Option(
            "--public-key",
            help="The signing key to trust (PEM, as GET /.well-known/cybergine-signing-key "
            "serves it); by default this server's own.",
        ),
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Check that an export bundle is the one this platform signed: every file listed in
    its manifest, unchanged, and the manifest's signature valid."""
    from cybergine.privacy import signing
    from cybergine.privacy.bundle import verify_bundle

    try:
        archive = bundle.read_bytes()
        key = public_key.read_text() if public_key is not None else None
    except OSError as error:
        typer.echo(f"error: {error.strerror}: {error.filename}", err=True)
        raise typer.Exit(2) from None
    if key is None:
        load_keys(settings_for(data_dir))
        key = signing.public_key_pem()
    problems = verify_bundle(archive, key)
    for problem in problems:
        typer.echo(f"not verified: {problem}", err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"verified: {bundle.name} is as the platform signed it")


policy_cli = typer.Typer(help="Versions of the privacy policy (§18).", no_args_is_help=True)
cli.add_typer(policy_cli, name="policy")


@policy_cli.command("add-version")
def policy_add_version(
    effective: Annotated[str, typer.Option(help="YYYY-MM-DD, at least 30 days from today.")],
    url: Annotated[str, typer.Option(help="Where the new version is published (https).")],
    summary: Annotated[str, typer.Option(help="What changes, in a sentence or two.")],
    data_dir: DataDirOption = None,
) -> None:
    """Record a new version; every staff user is e-mailed and sees it in the dashboard."""
    from cybergine.errors import CybergineError
    from cybergine.privacy_policy import commands

    settings = settings_for(data_dir)
    load_keys(settings)
    url_of_database = database_url(settings, migrate=settings.embedded)
    try:
        added = commands.add_version(
            url_of_database, settings, effective=effective, url=url, summary=summary
        )
        typer.echo(asyncio.run(added))
    except CybergineError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None


@policy_cli.command("versions")
def policy_versions(data_dir: DataDirOption = None) -> None:
    """List the versions recorded, newest first."""
    from cybergine.privacy_policy import commands

    settings = settings_for(data_dir)
    for line in asyncio.run(commands.list_versions(database_url(settings, migrate=False))):
        typer.echo(line)
