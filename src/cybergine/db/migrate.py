"""Alembic, driven from code: ``cybergine migrate``, ``serve`` on start, the tests.

The migration scripts live in ``cybergine/db/migrations``; ``alembic.ini`` at the
repository root points there too, for ``alembic revision --autogenerate``.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from cybergine.db.partitions import is_partition
from cybergine.db.urls import sqlalchemy_url

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Serialises concurrent `migrate` runs (a server and a worker starting together).
MIGRATION_LOCK_KEY = 0x63796267  # "cybg"


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["database_url"] = url
    return config


def upgrade(url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)


def include_object(
    obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any
) -> bool:
    """Leave Procrastinate's tables out of autogenerate: they come from its own schema
    file (see the first migration) and must not be proposed for dropping. Nor the
    partitions of the time-partitioned tables, which the maintenance job makes and the
    retention jobs drop (``db.partitions``), nor the foreign keys PostgreSQL keeps to
    each of them."""
    if type_ == "foreign_key_constraint" and reflected:
        # A foreign key to a partitioned table is also one to each of its partitions.
        return not is_partition(obj.referred_table.name)
    if type_ != "table" or name is None:
        return True
    return not (name.startswith("procrastinate_") or (reflected and is_partition(name)))


@functools.cache
def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config("postgresql://unused/")).get_current_head()


def current_revision(url: str) -> str | None:
    engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()


def execute_script(statement: str) -> None:
    """Run a SQL script inside a migration, straight through psycopg with no parameters:
    function bodies and Procrastinate's schema hold '%', ':' and '$' that SQLAlchemy's
    text() and psycopg's placeholders would otherwise try to interpret."""
    from alembic import op

    driver_connection = op.get_bind().connection.driver_connection
    assert driver_connection is not None
    driver_connection.execute(statement)
