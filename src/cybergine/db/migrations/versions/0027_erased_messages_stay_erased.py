"""A message delivered again after its customer was erased stays a duplicate, and the
raw event keeps nothing of them.

``cybergine_record_inbound`` (``cybergine/db/sql/record_inbound_0027.sql``) looks up the
keyed hashes of a batch's message ids (``erased_external_id`` of each item) once, and
records nothing for a message stored under one: Meta retrying a delivery no longer
recreates the erased customer. ``cybergine_whatsapp_ingest`` (``whatsapp_ingest_0027.sql``)
leaves out of the event row it keeps the erased customer's messages, contact entry and
the statuses of what was sent to them.

Revision ID: 0027
Revises: 0026
"""

from collections.abc import Sequence
from pathlib import Path

from cybergine.db.migrate import execute_script

revision: str = "0027"
down_revision: str | None = "0026"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


def upgrade() -> None:
    execute_script((SQL_DIR / "record_inbound_0027.sql").read_text())
    execute_script((SQL_DIR / "whatsapp_ingest_0027.sql").read_text())


def downgrade() -> None:
    execute_script((SQL_DIR / "whatsapp_ingest_0013.sql").read_text())
    execute_script((SQL_DIR / "record_inbound_0013.sql").read_text())
