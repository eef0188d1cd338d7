"""``cybergine_record_inbound`` looks up the erased customers' messages of a batch one
probe per message through the unique index of external ids, instead of filtering the
organisation's messages: the plan PostgreSQL caches for the function no longer depends
on how many messages the statistics say the organisation has.

Revision ID: 0040
Revises: 0039
"""

from collections.abc import Sequence
from pathlib import Path

from cybergine.db.migrate import execute_script

revision: str = "0040"
down_revision: str | None = "0039"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


def upgrade() -> None:
    execute_script((SQL_DIR / "record_inbound_0040.sql").read_text())


def downgrade() -> None:
    execute_script((SQL_DIR / "record_inbound_0037.sql").read_text())
