"""The questions' counts per UTC month (``knowledge_gap_months``): the daily counts summed
per month by statement triggers on the daily rows, so a year's top questions or
knowledge gaps read a dozen rows per group and key instead of 365. Filled by summing the
daily rows again, which the new triggers carry into the months.

Revision ID: 0043
Revises: 0042
"""

from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from cybergine.db.migrate import execute_script

revision: str = "0043"
down_revision: str | None = "0042"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
_DAYS = "knowledge_gap_days"
_MONTHS = "knowledge_gap_months"
# Each event's trigger and the statement's rows it reads (as the function names them).
_TRIGGERS = {
    "INSERT": "NEW TABLE AS added",
    "UPDATE": "OLD TABLE AS removed NEW TABLE AS added",
    "DELETE": "OLD TABLE AS removed",
}


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        _MONTHS,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("group_id", sa.Uuid(), nullable=False),
        _timestamp("month"),
        _timestamp("previous_day", nullable=True),
        _timestamp("previous_gap_day", nullable=True),
        sa.Column("assistant_id", sa.Uuid(), nullable=True),
        sa.Column("channel", postgresql.ENUM(name="channel", create_type=False), nullable=False),
        sa.Column("cause", sa.String(16), nullable=False),
        sa.Column("questions", sa.Integer(), nullable=False),
        _timestamp("first_seen"),
        _timestamp("last_seen"),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=f"fk_{_MONTHS}_organisation_id_organisations",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["knowledge_gap_groups.id"],
            name=f"fk_{_MONTHS}_group_id_knowledge_gap_groups",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=f"pk_{_MONTHS}"),
        sa.UniqueConstraint(
            "organisation_id",
            "group_id",
            "month",
            "previous_day",
            "previous_gap_day",
            "assistant_id",
            "channel",
            "cause",
            name=f"uq_{_MONTHS}_key",
            postgresql_nulls_not_distinct=True,
        ),
    )
    op.create_index(f"ix_{_MONTHS}_organisation_id", _MONTHS, ["organisation_id"])
    op.create_index(f"ix_{_MONTHS}_organisation_id_month", _MONTHS, ["organisation_id", "month"])
    execute_script((SQL_DIR / "knowledge_gap_months_keep_0043.sql").read_text())
    for event, rows in _TRIGGERS.items():
        op.execute(
            f"CREATE TRIGGER knowledge_gap_months_{event.lower()} AFTER {event} ON {_DAYS}"
            f" REFERENCING {rows} FOR EACH STATEMENT"
            " EXECUTE FUNCTION cybergine_knowledge_gap_months_keep()"
        )
    op.execute("SELECT cybergine_knowledge_gap_days_rebuild(id) FROM organisations")


def downgrade() -> None:
    for event in _TRIGGERS:
        op.execute(f"DROP TRIGGER knowledge_gap_months_{event.lower()} ON {_DAYS}")
    op.execute("DROP FUNCTION cybergine_knowledge_gap_months_keep()")
    op.drop_table(_MONTHS)
