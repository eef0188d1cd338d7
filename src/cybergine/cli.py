"""The ``cybergine`` command line."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer

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


def _settings(data_dir: Path | None = None) -> Settings:
    from cybergine.logging import configure_logging

    settings = load_settings(**({"data_dir": data_dir} if data_dir else {}))
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _database_url(settings: Settings, *, migrate: bool) -> str:
    from cybergine.db import migrate as migrations
    from cybergine.runtime import resolve_database_url

    url = resolve_database_url(settings)
    if migrate:
        migrations.upgrade(url)
    return url


def _exit_normally(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


@cli.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8000,
    data_dir: DataDirOption = None,
) -> None:
    """Run the web server (dashboard, API, webhooks, widget).

    In embedded mode it starts the database, applies migrations and runs a job
    worker in the same process (set CYBERGINE_EMBEDDED_WORKER=false to run
    `cybergine worker` separately).
    """
    import uvicorn

    from cybergine.app import create_app

    settings = _settings(data_dir)
    url = _database_url(settings, migrate=settings.embedded)
    app = create_app(settings, database_url=url)
    # Uvicorn shuts down gracefully on SIGTERM, then re-raises the signal with the
    # handler that was there before it. Make that handler a normal exit, so the
    # embedded database's exit hook runs and the last process stops the server.
    signal.signal(signal.SIGTERM, _exit_normally)
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        server_header=False,
        timeout_graceful_shutdown=10,
    )


@cli.command()
def worker(
    concurrency: Annotated[
        int | None, typer.Option(help="Jobs run at once (default: CYBERGINE_WORKER_CONCURRENCY).")
    ] = None,
    data_dir: DataDirOption = None,
) -> None:
    """Run a job worker until interrupted (SIGINT/SIGTERM finish running jobs first)."""
    from cybergine.db.engine import Database
    from cybergine.jobs import Worker

    settings = _settings(data_dir)
    url = _database_url(settings, migrate=settings.embedded)

    async def main() -> None:
        database = Database(url, pool_size=settings.db_pool_size)
        try:
            await Worker(
                database,
                concurrency=concurrency or settings.worker_concurrency,
                heartbeat_seconds=settings.worker_heartbeat_seconds,
                stalled_after_seconds=settings.worker_stalled_after_seconds,
            ).run()
        finally:
            await database.dispose()

    asyncio.run(main())


@cli.command()
def migrate(data_dir: DataDirOption = None) -> None:
    """Apply database migrations up to the latest revision."""
    from cybergine.db.migrate import current_revision

    settings = _settings(data_dir)
    url = _database_url(settings, migrate=True)
    typer.echo(f"database at migration {current_revision(url)}")


@cli.command()
def demo(data_dir: DataDirOption = None) -> None:
    """Seed the demo organisation (safe to run again: it changes nothing the second time)."""
    from cybergine.db.engine import Database
    from cybergine.demo import seed_demo

    settings = _settings(data_dir)
    url = _database_url(settings, migrate=True)

    async def main() -> None:
        database = Database(url, pool_size=1)
        try:
            async with database.transaction() as session:
                seed = await seed_demo(session)
        finally:
            await database.dispose()
        verb = "created" if seed.created else "already present"
        typer.echo(f"Demo organisation {verb}: {seed.organisation_id}")
        typer.echo("Open http://127.0.0.1:8000/ once `cybergine serve` is running.")

    asyncio.run(main())


@cli.command("version")
def version() -> None:
    """Print the version."""
    from cybergine import __version__

    typer.echo(json.dumps({"cybergine": __version__}))


def main() -> None:
    cli()
