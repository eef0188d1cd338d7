"""The reply job that ``cybergine_record_inbound`` defers carries what the message's item
brings in ``job_arguments`` besides the message's id: the trace context of the request
that received it, when OpenTelemetry traces are on (``cybergine.observability.tracing``),
so one trace runs from a webhook to the answer's send. An item without it (traces off)
defers the job as before.

Revision ID: 0037
Revises: 0036
"""

from collections.abc import Sequence
from pathlib import Path

from cybergine.db.migrate import execute_script

revision: str = "0037"
down_revision: str | None = "0036"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"


def upgrade() -> None:
    execute_script((SQL_DIR / "record_inbound_0037.sql").read_text())


def downgrade() -> None:
    execute_script((SQL_DIR / "record_inbound_0034.sql").read_text())
