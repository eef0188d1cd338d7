"""Foundation: pgvector, the job queue schema, organisations.

Revision ID: 0001
Revises:
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from procrastinate.schema import SchemaManager

from cybergine.db.migrate import execute_script

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Procrastinate's schema is applied from the installed package. It is pinned (see
# constraints.txt) and `tests/db/test_migrations.py` fails when the installed version
# differs from this one: an upgrade must come with a migration that runs Procrastinate's
# own delta scripts (`procrastinate/sql/migrations/`) for the versions in between.
PROCRASTINATE_SCHEMA_VERSION = "3.10.0"


# Removes every table, routine and type Procrastinate's schema created.
DROP_JOB_QUEUE = """
DO $$
DECLARE r record;
BEGIN
  FOR r IN SELECT tablename FROM pg_tables
           WHERE schemaname = current_schema() AND tablename LIKE 'procrastinate\\_%' LOOP
    EXECUTE format('DROP TABLE IF EXISTS %I CASCADE', r.tablename);
  END LOOP;
  FOR r IN SELECT p.oid::regprocedure AS signature FROM pg_proc p
           JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = current_schema() AND p.proname LIKE 'procrastinate\\_%' LOOP
    EXECUTE format('DROP ROUTINE IF EXISTS %s CASCADE', r.signature);
  END LOOP;
  FOR r IN SELECT t.typname FROM pg_type t
           JOIN pg_namespace n ON n.oid = t.typnamespace
           LEFT JOIN pg_class c ON c.oid = t.typrelid
           WHERE n.nspname = current_schema()
             AND (t.typtype = 'e' OR (t.typtype = 'c' AND c.relkind = 'c'))
             AND t.typname LIKE 'procrastinate\\_%' LOOP
    EXECUTE format('DROP TYPE IF EXISTS %I CASCADE', r.typname);
  END LOOP;
END $$;
"""


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS vector")
    execute_script(SchemaManager.get_schema())

    organisation_status = sa.Enum("active", "pending_deletion", name="organisation_status")
    op.create_table(
        "organisations",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("status", organisation_status, server_default="active", nullable=False),
        sa.Column("erase_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.CheckConstraint("length(btrim(name)) > 0", name=op.f("ck_organisations_name_not_blank")),
        sa.CheckConstraint(
            "(status = 'pending_deletion') = (erase_after IS NOT NULL)",
            name=op.f("ck_organisations_erase_after_iff_pending"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisations")),
    )


def downgrade() -> None:
    op.drop_table("organisations")
    sa.Enum(name="organisation_status").drop(op.get_bind(), checkfirst=True)
    execute_script(DROP_JOB_QUEUE)
    # The vector extension stays: other schemas in the database may use it.
