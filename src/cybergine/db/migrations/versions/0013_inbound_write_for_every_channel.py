"""Inbound messages of every channel written by one SQL function.

``cybergine_record_inbound`` (``cybergine/db/sql/record_inbound_0013.sql``) records what
customers write on any channel: the web chat calls it for one message, the WhatsApp
webhook for a delivery that needs Python's follow-up (media, consent words), and
``cybergine_whatsapp_ingest`` (``whatsapp_ingest_0013.sql``, version 3) calls it for the
messages of every batch its group commit writes. The NOTIFY channel's name comes in as
``notify_channel``. A late status finds an erased customer's message by the keyed hash of
its wamid (``erased_wamid``), which erasure stores in place of the id.

Revision ID: 0013
Revises: 0012
"""

from collections.abc import Sequence
from pathlib import Path

from alembic import op

from cybergine.db.migrate import execute_script

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


def upgrade() -> None:
    execute_script((SQL_DIR / "record_inbound_0013.sql").read_text())
    execute_script((SQL_DIR / "whatsapp_ingest_0013.sql").read_text())


def downgrade() -> None:
    execute_script((SQL_DIR / "whatsapp_ingest_0012.sql").read_text())
    op.execute("DROP FUNCTION IF EXISTS cybergine_record_inbound(jsonb, jsonb, jsonb)")
