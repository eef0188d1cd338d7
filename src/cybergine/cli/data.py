"""Data an operator loads: ``cybergine org`` and ``cybergine kb``."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated

import typer

from cybergine.cli.root import DataDirOption, cli, database_url, load_keys, settings_for

org_cli = typer.Typer(help="Organisations.", no_args_is_help=True)
cli.add_typer(org_cli, name="org")


@org_cli.command("create")
def org_create(
    name: Annotated[str, typer.Argument(help="The organisation's name.")],
    owner_email: Annotated[str, typer.Option("--owner-email", help="The owner's e-mail.")],
    owner_password: Annotated[
        str,
        typer.Option(
            "--owner-password",
            help="For a new owner: their password. For an existing user: their current one.",
        ),
    ],
    data_dir: DataDirOption = None,
) -> None:
    """Create an organisation and its owner; print JSON with its id and a new owner API key."""
    from cybergine.accounts.service.provisioning import create_organisation_with_owner
    from cybergine.db.engine import Database
    from cybergine.errors import CybergineError

    settings = settings_for(data_dir)
    load_keys(settings)
    url = database_url(settings, migrate=settings.embedded)

    async def main() -> dict[str, str]:
        database = Database(url, pool_size=1)
        try:
            async with database.transaction() as session:
                provisioned = await create_organisation_with_owner(
                    session, name=name, owner_email=owner_email, owner_password=owner_password
                )
                return {
                    "organisation_id": str(provisioned.organisation_id),
                    "api_key": provisioned.api_key,
                }
        finally:
            await database.dispose()

    try:
        typer.echo(json.dumps(asyncio.run(main())))
    except CybergineError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None


kb_cli = typer.Typer(help="The knowledge base.", no_args_is_help=True)
cli.add_typer(kb_cli, name="kb")


@kb_cli.command("import")
def kb_import(
    file: Annotated[
        Path,
        typer.Argument(
            help="JSON Lines: one object per line with external_id, title, text (and metadata).",
            exists=True,
            dir_okay=False,
            readable=True,
        ),
    ],
    org: Annotated[str, typer.Option("--org", help="The organisation's id.")],
    collection: Annotated[
        str | None,
        typer.Option("--collection", help="Collection to import into (default: default)."),
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Import documents in bulk; lines with an external_id already imported are updated."""
    import uuid

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from cybergine.accounts.service.organisations import get_organisation
    from cybergine.db.engine import Database
    from cybergine.errors import CybergineError
    from cybergine.knowledge import bulk
    from cybergine.knowledge.providers import embedding_provider

    settings = settings_for(data_dir)
    load_keys(settings)
    url = database_url(settings, migrate=settings.embedded)
    try:
        organisation_id = uuid.UUID(org)
    except ValueError:
        typer.echo(f"error: {org!r} is not an organisation id", err=True)
        raise typer.Exit(2) from None
    with file.open("rb") as handle:
        total = sum(1 for line in handle if line.strip())

    async def main() -> bulk.ImportReport:
        database = Database(url, pool_size=2)
        report = bulk.ImportReport()
        try:
            async with database.transaction() as session:
                await get_organisation(session, organisation_id)
            with (
                file.open(encoding="utf-8", errors="replace") as lines,
                Progress(
                    "[progress.description]{task.description}",
                    BarColumn(),
                    MofNCompleteColumn(),
                    TimeRemainingColumn(),
                    transient=False,
                ) as progress,
            ):
                task = progress.add_task("importing", total=total)
                await bulk.import_records(
                    database,
                    organisation_id=organisation_id,
                    records=bulk.read_jsonl(lines, report),
                    collection=collection,
                    provider=embedding_provider(settings),
                    report=report,
                    on_batch=lambda n: progress.advance(task, n),
                )
        finally:
            await database.dispose()
        return report

    try:
        report = asyncio.run(main())
    except CybergineError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None
    typer.echo(f"imported {report.imported} documents ({report.chunks} chunks)")
    for error in report.errors[:50]:
        typer.echo(f"  skipped {error}", err=True)
    if len(report.errors) > 50:
        typer.echo(f"  … and {len(report.errors) - 50} more", err=True)
    if report.errors:
        raise typer.Exit(1)
