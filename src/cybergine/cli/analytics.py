"""Analytics from the command line: ``cybergine analytics rebuild``."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated

import typer

from cybergine.cli.root import DataDirOption, cli, database_url, settings_for

analytics_cli = typer.Typer(help="Analytics: the hourly aggregates.", no_args_is_help=True)
cli.add_typer(analytics_cli, name="analytics")


def _since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(
            f"{value!r} is not a date (YYYY-MM-DD) or an ISO 8601 time.", param_hint="--since"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@analytics_cli.command("rebuild")
def analytics_rebuild(
    org: Annotated[
        str | None, typer.Option("--org", help="Only this organisation (its id).")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Recompute from the UTC day of this date or time (ISO 8601, UTC unless it "
            "says otherwise); default: as far back as aggregates are kept (2 years).",
        ),
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Recompute the aggregates from the conversations and messages, whole UTC days at a
    time, so a changed definition (or idle time) applies to history. Runs beside the
    server: each week of history is one transaction, under the organisation's lock that
    refreshes take too."""
    from cybergine.analytics import rebuild
    from cybergine.db.engine import Database

    organisation_id = None
    if org is not None:
        try:
            organisation_id = uuid.UUID(org)
        except ValueError:
            raise typer.BadParameter(
                f"{org!r} is not an organisation id.", param_hint="--org"
            ) from None
    start = _since(since)
    settings = settings_for(data_dir)
    url = database_url(settings, migrate=settings.embedded)

    async def main() -> rebuild.Report:
        database = Database(url, pool_size=1, statement_timeout_ms=0)
        try:
            return await rebuild.rebuild(
                database,
                idle_hours=settings.analytics_idle_resolution_hours,
                organisation_id=organisation_id,
                since=start,
            )
        finally:
            await database.dispose()

    began = time.monotonic()
    try:
        report = asyncio.run(main())
    except rebuild.UnknownOrganisation as error:
        typer.echo(f"error: {error}", err=True)
        raise typer.Exit(1) from None
    typer.echo(
        f"rebuilt {report.organisations} organisation(s) from {report.since:%Y-%m-%d %H:%M} UTC"
        f" in {time.monotonic() - began:.1f}s"
    )
