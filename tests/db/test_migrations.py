"""The schema in the database is exactly what the models and migrations say."""

import importlib.util
from importlib.metadata import version

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlalchemy.pool import NullPool

from cybergine.db import migrate
from cybergine.db.migrate import include_object
from cybergine.db.models import metadata
from cybergine.db.urls import sqlalchemy_url


def _diff(url: str) -> list[object]:
    engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_object": include_object, "compare_type": True}
        )
        diff = compare_metadata(context, metadata)
    engine.dispose()
    return list(diff)


def test_database_is_at_head_after_migrating(database_url: str) -> None:
    assert migrate.current_revision(database_url) == migrate.head_revision()


def test_models_and_migrations_agree(database_url: str) -> None:
    assert _diff(database_url) == []


def test_migrations_create_pgvector_and_the_job_queue(database_url: str) -> None:
    engine = create_engine(sqlalchemy_url(database_url), poolclass=NullPool)
    with engine.connect() as conn:
        extensions = {row[0] for row in conn.exec_driver_sql("SELECT extname FROM pg_extension")}
        tables = set(inspect(conn).get_table_names())
    engine.dispose()
    assert "vector" in extensions
    assert {"procrastinate_jobs", "procrastinate_workers", "organisations"} <= tables


def test_upgrade_downgrade_upgrade_round_trip(empty_database_url: str) -> None:
    migrate.upgrade(empty_database_url)
    migrate.downgrade(empty_database_url, "base")
    assert migrate.current_revision(empty_database_url) is None
    migrate.upgrade(empty_database_url)
    assert migrate.current_revision(empty_database_url) == migrate.head_revision()


def test_migrating_twice_is_harmless(database_url: str) -> None:
    migrate.upgrade(database_url)
    assert migrate.current_revision(database_url) == migrate.head_revision()


def test_job_queue_schema_matches_the_installed_procrastinate() -> None:
    path = migrate.MIGRATIONS_DIR / "versions" / "0001_foundation.py"
    spec = importlib.util.spec_from_file_location("foundation_migration", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert version("procrastinate") == module.PROCRASTINATE_SCHEMA_VERSION, (
        "Procrastinate was upgraded: add a migration that applies its delta scripts."
    )
