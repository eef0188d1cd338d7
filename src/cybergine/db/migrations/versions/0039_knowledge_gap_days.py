"""Knowledge gaps per day: each question knows when its conversation last asked in the
same group before (``previous_at``), and ``knowledge_gap_days`` holds the questions'
counts per group, UTC day, previous question's day, assistant, channel and cause, kept by
a trigger on the questions, so a year's report sums a few rows per group and day rather
than counting (and de-duplicating the conversations of) every question.

Revision ID: 0039
Revises: 0038
"""

from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from cybergine.db.migrate import execute_script

revision: str = "0039"
down_revision: str | None = "0038"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
_QUESTIONS = "knowledge_gap_questions"
_DAYS = "knowledge_gap_days"
_INDEX = "ix_knowledge_gap_questions_organisation_id_created_at"
# What a question's row changes that moves its day's counts.
_KEY = ("group_id", "previous_at", "created_at", "assistant_id", "channel", "cause")


def _timestamp(name: str, *, nullable: bool = False) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.add_column(_QUESTIONS, _timestamp("previous_at", nullable=True))
    op.execute(
        f"""
        UPDATE {_QUESTIONS} q SET previous_at = p.previous_at
          FROM (SELECT id, lag(created_at) OVER (PARTITION BY conversation_id, group_id
                                                 ORDER BY created_at, id) AS previous_at
                  FROM {_QUESTIONS} WHERE group_id IS NOT NULL) AS p
         WHERE q.id = p.id AND p.previous_at IS NOT NULL
        """  # noqa: S608
    )
    op.drop_index(_INDEX, table_name=_QUESTIONS)
    op.create_index(
        _INDEX,
        _QUESTIONS,
        ["organisation_id", "created_at"],
        postgresql_include=["group_id", "previous_at", "cause", "assistant_id", "channel"],
    )
    op.create_index(
        "ix_knowledge_gap_questions_organisation_id_previous_at",
        _QUESTIONS,
        ["organisation_id", "previous_at"],
        postgresql_where=sa.text("previous_at IS NOT NULL"),
    )
    op.create_table(
        _DAYS,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("group_id", sa.Uuid(), nullable=False),
        _timestamp("day"),
        _timestamp("previous_day", nullable=True),
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
            name=f"fk_{_DAYS}_organisation_id_organisations",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["knowledge_gap_groups.id"],
            name=f"fk_{_DAYS}_group_id_knowledge_gap_groups",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=f"pk_{_DAYS}"),
        sa.UniqueConstraint(
            "organisation_id",
            "group_id",
            "day",
            "previous_day",
            "assistant_id",
            "channel",
            "cause",
            name=f"uq_{_DAYS}_key",
            postgresql_nulls_not_distinct=True,
        ),
    )
    op.create_index(f"ix_{_DAYS}_organisation_id", _DAYS, ["organisation_id"])
    op.create_index(f"ix_{_DAYS}_organisation_id_day", _DAYS, ["organisation_id", "day"])
    execute_script((SQL_DIR / "knowledge_gap_days_keep_0039.sql").read_text())
    execute_script((SQL_DIR / "knowledge_gap_days_rebuild_0039.sql").read_text())
    changed = " OR ".join(f"OLD.{name} IS DISTINCT FROM NEW.{name}" for name in _KEY)
    op.execute(
        f"CREATE TRIGGER knowledge_gap_days_keep AFTER INSERT OR DELETE ON {_QUESTIONS}"
        " FOR EACH ROW EXECUTE FUNCTION cybergine_knowledge_gap_days_keep()"
    )
    op.execute(
        f"CREATE TRIGGER knowledge_gap_days_move AFTER UPDATE OF {', '.join(_KEY)}"
        f" ON {_QUESTIONS} FOR EACH ROW WHEN ({changed})"
        " EXECUTE FUNCTION cybergine_knowledge_gap_days_keep()"
    )
    op.execute("SELECT cybergine_knowledge_gap_days_rebuild(id) FROM organisations")


def downgrade() -> None:
    op.execute(f"DROP TRIGGER knowledge_gap_days_move ON {_QUESTIONS}")
    op.execute(f"DROP TRIGGER knowledge_gap_days_keep ON {_QUESTIONS}")
    op.execute("DROP FUNCTION cybergine_knowledge_gap_days_rebuild(uuid)")
    op.execute("DROP FUNCTION cybergine_knowledge_gap_days_keep()")
    op.drop_table(_DAYS)
    op.drop_index("ix_knowledge_gap_questions_organisation_id_previous_at", table_name=_QUESTIONS)
    op.drop_index(_INDEX, table_name=_QUESTIONS)
    op.create_index(
        _INDEX,
        _QUESTIONS,
        ["organisation_id", "created_at"],
        postgresql_include=["group_id", "conversation_id", "cause", "assistant_id", "channel"],
    )
    op.drop_column(_QUESTIONS, "previous_at")
