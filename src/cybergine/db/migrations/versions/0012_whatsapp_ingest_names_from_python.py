"""WhatsApp ingest, version 2: the SQL function takes the names it writes (the NOTIFY
channel, the reply job's task, queue and lock prefix) from Python, and counts on a
webhook event row every status Meta sent, as the Python path does (a voice message's
``played`` too, though it moves no message forward).

The function lives in ``cybergine/db/sql/whatsapp_ingest_0012.sql``, named after this
migration and never edited: a change of a rule is a new file loaded by a new migration,
and ``tests/db/test_sql_functions.py`` checks that the newest file is what is deployed.

Revision ID: 0012
Revises: 0011
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from alembic import op

from cybergine.db.migrate import execute_script

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


def upgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS cybergine_whatsapp_ingest(jsonb)")
    execute_script((SQL_DIR / "whatsapp_ingest_0012.sql").read_text())


def downgrade() -> None:
    op.execute("DROP FUNCTION IF EXISTS cybergine_whatsapp_ingest(jsonb, jsonb)")
    # Version 1, as migration 0008 wrote it.
    path = Path(__file__).with_name("0008_whatsapp_ingest_function.py")
    spec = importlib.util.spec_from_file_location("cybergine_migration_0008", path)
    assert spec is not None
    assert spec.loader is not None
    version_1 = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(version_1)
    execute_script(version_1.INGEST)
