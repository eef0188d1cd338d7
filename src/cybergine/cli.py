"""The ``cybergine`` command line."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path
from types import FrameType
from typing import Annotated

import typer
import uvloop

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


def _settings(data_dir: Path | None = None) -> Settings:
    from cybergine.logging import configure_logging

    settings = load_settings(**({"data_dir": data_dir} if data_dir else {}))
    configure_logging(settings.log_level, settings.log_format)
    return settings


def _load_keys(settings: Settings) -> ServerKeys:
    """Install the server keys, or exit 2 with the reason (missing, malformed)."""
    from cybergine.privacy import keys

    try:
        return keys.load(settings)
    except keys.KeyConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


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
    whatsapp_simulator: Annotated[
        bool,
        typer.Option(
            help="Development: serve Meta's Graph API from a simulator in this process and "
            "chat as a WhatsApp customer at /dev/whatsapp (needs `cybergine demo`)."
        ),
    ] = False,
) -> None:
    """Run the web server (dashboard, API, webhooks, widget).

    In embedded mode it starts the database, applies migrations and runs a job
    worker in the same process (set CYBERGINE_EMBEDDED_WORKER=false to run
    `cybergine worker` separately).
    """
    import uvicorn

    from cybergine.app import create_app

    settings = _settings(data_dir)
    _load_keys(settings)
    url = _database_url(settings, migrate=settings.embedded)
    sandbox = None
    if whatsapp_simulator:
        from cybergine.channels.whatsapp.sandbox import Sandbox

        local = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host  # noqa: S104
        sandbox = Sandbox(settings, f"http://{local}:{port}")
        settings = sandbox.start(settings)
    app = create_app(settings, database_url=url)
    app.state.whatsapp_sandbox = sandbox
    # Uvicorn shuts down gracefully on SIGTERM, then re-raises the signal with the
    # handler that was there before it. Make that handler a normal exit, so the
    # embedded database's exit hook runs and the last process stops the server.
    signal.signal(signal.SIGTERM, _exit_normally)
    try:
        uvicorn.run(
            app,
            host=host,
            port=port,
            log_config=None,
            access_log=False,
            # Forwarded headers are the app's to judge (CYBERGINE_TRUSTED_PROXIES,
            # cybergine.web.proxies), not uvicorn's, which believes any local peer.
            proxy_headers=False,
            server_header=False,
            timeout_graceful_shutdown=10,
            # Widget frames are small JSON: compression would buy nothing and costs
            # about 46 KB of memory per open socket.
            ws_per_message_deflate=False,
        )
    finally:
        if sandbox is not None:
            sandbox.stop()


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
    _load_keys(settings)
    url = _database_url(settings, migrate=settings.embedded)

    async def main() -> None:
        database = Database(url, pool_size=settings.db_pool_size, pre_ping=False)
        try:
            await Worker(
                database,
                settings=settings,
                concurrency=concurrency or settings.worker_concurrency,
                heartbeat_seconds=settings.worker_heartbeat_seconds,
                stalled_after_seconds=settings.worker_stalled_after_seconds,
            ).run()
        finally:
            await database.dispose()

    # The web server runs on uvloop (uvicorn's choice); so does the worker, whose jobs
    # are many small database and HTTP round trips, each a few event-loop operations.
    uvloop.run(main())


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
    from cybergine.demo import DEMO_OWNER_EMAIL, DEMO_OWNER_PASSWORD, seed_demo

    settings = _settings(data_dir)
    _load_keys(settings)
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
        typer.echo(f"Dashboard: {settings.public_url}/ (once `cybergine serve` is running)")
        typer.echo(f"Demo sign-in: {DEMO_OWNER_EMAIL} / {DEMO_OWNER_PASSWORD}")

    asyncio.run(main())


@cli.command("version")
def version() -> None:
    """Print the version."""
    from cybergine import __version__

    typer.echo(json.dumps({"cybergine": __version__}))


keys_cli = typer.Typer(
    help="Server keys: make new ones, re-encrypt stored secrets with the newest.",
    no_args_is_help=True,
)
cli.add_typer(keys_cli, name="keys")


@keys_cli.command("generate")
def keys_generate() -> None:
    """Print a new encryption (Fernet) key and a new secret key; nothing is stored."""
    from cybergine.privacy import keys

    typer.echo(f"encryption key: {keys.generate_fernet_key()}")
    typer.echo(f"secret key: {keys.generate_secret_key()}")
    typer.echo(
        "Prepend the encryption key to CYBERGINE_ENCRYPTION_KEYS (comma-separated, old keys "
        "after it) on every server and worker, restart them, then run `cybergine keys rotate`; "
        "the secret key is for CYBERGINE_SECRET_KEY on a new install."
    )


@keys_cli.command("rotate")
def keys_rotate(
    add_key: Annotated[
        bool,
        typer.Option(
            "--add-key",
            help="Embedded mode: first put a newly generated key in front of the key file's keys.",
        ),
    ] = False,
    data_dir: DataDirOption = None,
) -> None:
    """Re-encrypt every stored secret with the first encryption key (one transaction).

    Afterwards keys after the first are needed no more and can be removed.
    """
    from cybergine.db.engine import Database
    from cybergine.db.migrate import current_revision, head_revision
    from cybergine.db.models import metadata
    from cybergine.privacy import keys
    from cybergine.privacy.crypto import SecretDecryptionError, rotate_all

    settings = _settings(data_dir)
    if add_key and not settings.embedded:
        typer.echo(
            "error: --add-key works only in embedded mode (CYBERGINE_DATABASE_URL unset), "
            "where the keys live in the data directory. Here: run `cybergine keys generate`, "
            "prepend the new key to CYBERGINE_ENCRYPTION_KEYS everywhere, restart, then run "
            "`cybergine keys rotate`.",
            err=True,
        )
        raise typer.Exit(2)
    if add_key and settings.encryption_keys is not None:
        typer.echo(
            "error: CYBERGINE_ENCRYPTION_KEYS is set, so the key file's encryption keys are "
            "not used: prepend a new key (`cybergine keys generate`) to that variable instead.",
            err=True,
        )
        raise typer.Exit(2)
    _load_keys(settings)

    url = _database_url(settings, migrate=settings.embedded)
    revision = current_revision(url)
    if revision != head_revision():
        typer.echo(
            f"error: the database is at migration {revision}, this code expects "
            f"{head_revision()}: run `cybergine migrate` first.",
            err=True,
        )
        raise typer.Exit(1)

    if add_key:
        # The key file first, the data after: if rotation fails, the file still holds
        # every key the data may be encrypted with.
        path = keys.key_file(settings)
        stored = keys.read_key_file(path)
        keys.write_key_file(
            path,
            keys.ServerKeys(
                secret_key=stored.secret_key,
                encryption_keys=(keys.generate_fernet_key(), *stored.encryption_keys),
            ),
        )
        keys.load(settings)
        typer.echo(f"added a new first encryption key to {path} (back this file up)")

    async def main() -> None:
        database = Database(url, pool_size=1)
        try:
            async with database.transaction() as session:
                report = await rotate_all(session, metadatas=[metadata])
        finally:
            await database.dispose()
        for column, counts in report.columns.items():
            typer.echo(
                f"  {column}: {counts.rotated} re-encrypted, "
                f"{counts.already_current} already current"
            )
        typer.echo(report.summary())

    try:
        asyncio.run(main())
    except SecretDecryptionError as exc:
        typer.echo(f"error: {exc}; nothing was changed.", err=True)
        raise typer.Exit(1) from None
    if add_key:
        typer.echo(
            "Restart running `cybergine serve` and `worker` processes so they use the new key."
        )


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

    settings = _settings(data_dir)
    _load_keys(settings)
    url = _database_url(settings, migrate=settings.embedded)

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

    settings = _settings(data_dir)
    _load_keys(settings)
    url = _database_url(settings, migrate=settings.embedded)
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


audit_cli = typer.Typer(help="The tamper-evident audit trail.", no_args_is_help=True)
cli.add_typer(audit_cli, name="audit")


@audit_cli.command("verify")
def audit_verify(data_dir: DataDirOption = None) -> None:
    """Recompute the audit trail's hash chain; exit 1 at the first entry that breaks it."""
    from cybergine.db.engine import Database
    from cybergine.privacy import audit

    settings = _settings(data_dir)
    secret_key = _load_keys(settings).secret_key
    url = _database_url(settings, migrate=settings.embedded)

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
    settings = _settings(data_dir)
    _load_keys(settings)
    url = _database_url(settings, migrate=settings.embedded)

    async def main() -> purge.Report:
        database = Database(url, pool_size=1)
        try:
            return await purge.run(database, as_of=moment, dry_run=dry_run)
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
        _load_keys(_settings(data_dir))
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

    settings = _settings(data_dir)
    _load_keys(settings)
    database_url = _database_url(settings, migrate=settings.embedded)
    try:
        added = commands.add_version(
            database_url, settings, effective=effective, url=url, summary=summary
        )
        typer.echo(asyncio.run(added))
    except CybergineError as exc:
        typer.echo(f"error: {exc.detail}", err=True)
        raise typer.Exit(1) from None


@policy_cli.command("versions")
def policy_versions(data_dir: DataDirOption = None) -> None:
    """List the versions recorded, newest first."""
    from cybergine.privacy_policy import commands

    settings = _settings(data_dir)
    for line in asyncio.run(commands.list_versions(_database_url(settings, migrate=False))):
        typer.echo(line)


def main() -> None:
    cli()
