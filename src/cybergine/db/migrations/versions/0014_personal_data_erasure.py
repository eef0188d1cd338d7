"""Erasure that leaves no identifier: an erased customer's message ids are keyed hashes,
and ``cybergine_whatsapp_ingest`` (version 4, ``whatsapp_ingest_0014.sql``) matches a late
status by the keyed hash of its wamid. Both ingest functions (``record_inbound_0014.sql``
too) collect what they recorded in arrays appended in place rather than copied.

Revision ID: 0014
Revises: 0013
"""

from collections.abc import Sequence
from pathlib import Path

from cybergine.db.migrate import execute_script

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


def upgrade() -> None:
    execute_script((SQL_DIR / "record_inbound_0014.sql").read_text())
    execute_script((SQL_DIR / "whatsapp_ingest_0014.sql").read_text())


def downgrade() -> None:
    execute_script((SQL_DIR / "record_inbound_0013.sql").read_text())
    execute_script((SQL_DIR / "whatsapp_ingest_0013.sql").read_text())
