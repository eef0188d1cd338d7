"""A customer who opted out still has the rights they exercise in the chat recorded, and
the retention purge removes messages without scanning the surveys.

``cybergine_record_inbound`` (``cybergine/db/sql/record_inbound_0034.sql``) defers the
reply job for an opted-out customer's message too: the reply verdict lets the assistant
answer nothing, and the pipeline records a right their words exercise ("delete my data",
policy §14) as a privacy request for the team, as it does for an objecting customer.

``csat_surveys.message_id`` gets an index: every message deleted (the retention purge,
an erasure) sets the survey that names it to NULL, which without one read the whole
table once per message.

Revision ID: 0034
Revises: 0033
"""

from collections.abc import Sequence
from pathlib import Path

from alembic import op

from cybergine.db.migrate import execute_script

revision: str = "0034"
down_revision: str | None = "0033"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


def upgrade() -> None:
    execute_script((SQL_DIR / "record_inbound_0034.sql").read_text())
    op.create_index("ix_csat_surveys_message_id", "csat_surveys", ["message_id"])


def downgrade() -> None:
    op.drop_index("ix_csat_surveys_message_id", table_name="csat_surveys")
    execute_script((SQL_DIR / "record_inbound_0027.sql").read_text())
