"""``cybergine keys``: generating and rotating the server keys."""

from __future__ import annotations

import asyncio
from typing import Annotated

import typer

from cybergine.cli.root import DataDirOption, cli, database_url, load_keys, settings_for

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

    settings = settings_for(data_dir)
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
    load_keys(settings)

    url = database_url(settings, migrate=settings.embedded)
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
