"""Alembic environment: one sync psycopg connection, an advisory lock, our metadata."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from cybergine.db.migrate import MIGRATION_LOCK_KEY, include_object
from cybergine.db.models import metadata
from cybergine.db.urls import sqlalchemy_url

config = context.config


def _database_url() -> str:
    url = config.attributes.get("database_url")
    if url:
        return str(url)
    # Run from the `alembic` command line: same resolution as the app.
    from cybergine.runtime import resolve_database_url
    from cybergine.settings import load_settings

    return resolve_database_url(load_settings())


def run_migrations_online() -> None:
    engine = create_engine(sqlalchemy_url(_database_url()), poolclass=NullPool)
    with engine.connect() as connection:
        connection.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        connection.commit()
        try:
            context.configure(
                connection=connection,
                target_metadata=metadata,
                include_object=include_object,
                compare_type=True,
                transaction_per_migration=True,
            )
            with context.begin_transaction():
                context.run_migrations()
            connection.commit()
        finally:
            connection.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
            connection.commit()
    engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (SQL script) migrations are not supported; run `cybergine migrate`")
run_migrations_online()
