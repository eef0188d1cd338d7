"""Top questions: the questions collected for the knowledge gaps are every question the
assistant answered, the grounded answers' too (``cause`` "grounded"), so a question
knows besides when its conversation last asked in its group (``previous_at``) when it
last asked there a question of a knowledge gap's cause (``previous_gap_at``), and the
daily counts are kept per both days: the top questions count a group's conversations by
the first, the knowledge gaps by the second.

Every question collected before is a knowledge gap's, so its ``previous_gap_at`` is its
``previous_at``. The collection marks are removed: the next collection reads the last
12 months again and adds the grounded answers' questions (the ones it has are skipped).

Revision ID: 0042
Revises: 0041
"""

from collections.abc import Sequence
from pathlib import Path

import sqlalchemy as sa
from alembic import op

from cybergine.db.migrate import execute_script

revision: str = "0042"
down_revision: str | None = "0041"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
_QUESTIONS = "knowledge_gap_questions"
_DAYS = "knowledge_gap_days"
_INDEX = "ix_knowledge_gap_questions_organisation_id_created_at"
_GAP_INDEX = "ix_knowledge_gap_questions_organisation_id_previous_gap_at"
_DAY_KEY = ["organisation_id", "group_id", "day", "previous_day"]
_REST_OF_KEY = ["assistant_id", "channel", "cause"]
_INCLUDED = ["group_id", "previous_at", "cause", "assistant_id", "channel"]
# What a question's row changes that moves its day's counts.
_KEY = ("group_id", "previous_at", "created_at", "assistant_id", "channel", "cause")


def _triggers(key: Sequence[str]) -> None:
    changed = " OR ".join(f"OLD.{name} IS DISTINCT FROM NEW.{name}" for name in key)
    op.execute(
        f"CREATE TRIGGER knowledge_gap_days_keep AFTER INSERT OR DELETE ON {_QUESTIONS}"
        " FOR EACH ROW EXECUTE FUNCTION cybergine_knowledge_gap_days_keep()"
    )
    op.execute(
        f"CREATE TRIGGER knowledge_gap_days_move AFTER UPDATE OF {', '.join(key)}"
        f" ON {_QUESTIONS} FOR EACH ROW WHEN ({changed})"
        " EXECUTE FUNCTION cybergine_knowledge_gap_days_keep()"
    )


def _drop_triggers() -> None:
    op.execute(f"DROP TRIGGER knowledge_gap_days_move ON {_QUESTIONS}")
    op.execute(f"DROP TRIGGER knowledge_gap_days_keep ON {_QUESTIONS}")


def _key(columns: list[str]) -> None:
    op.drop_constraint(f"uq_{_DAYS}_key", _DAYS, type_="unique")
    op.create_unique_constraint(
        f"uq_{_DAYS}_key", _DAYS, columns, postgresql_nulls_not_distinct=True
    )


def _covering_index(included: list[str]) -> None:
    op.drop_index(_INDEX, table_name=_QUESTIONS)
    op.create_index(
        _INDEX, _QUESTIONS, ["organisation_id", "created_at"], postgresql_include=included
    )


def upgrade() -> None:
    _drop_triggers()
    op.add_column(_QUESTIONS, sa.Column("previous_gap_at", sa.DateTime(timezone=True)))
    op.add_column(_DAYS, sa.Column("previous_gap_day", sa.DateTime(timezone=True)))
    op.execute(f"UPDATE {_QUESTIONS} SET previous_gap_at = previous_at")  # noqa: S608
    _key([*_DAY_KEY, "previous_gap_day", *_REST_OF_KEY])
    _covering_index([*_INCLUDED[:2], "previous_gap_at", *_INCLUDED[2:]])
    op.create_index(
        _GAP_INDEX,
        _QUESTIONS,
        ["organisation_id", "previous_gap_at"],
        postgresql_where=sa.text("previous_gap_at IS NOT NULL"),
    )
    execute_script((SQL_DIR / "knowledge_gap_days_keep_0042.sql").read_text())
    execute_script((SQL_DIR / "knowledge_gap_days_rebuild_0042.sql").read_text())
    _triggers((*_KEY, "previous_gap_at"))
    op.execute("SELECT cybergine_knowledge_gap_days_rebuild(id) FROM organisations")
    op.execute("DELETE FROM knowledge_gap_marks")


def downgrade() -> None:
    _drop_triggers()
    op.execute(f"DELETE FROM {_QUESTIONS} WHERE cause = 'grounded'")  # noqa: S608
    op.drop_index(_GAP_INDEX, table_name=_QUESTIONS)
    _covering_index(_INCLUDED)
    _key([*_DAY_KEY, *_REST_OF_KEY])
    op.drop_column(_DAYS, "previous_gap_day")
    op.drop_column(_QUESTIONS, "previous_gap_at")
    execute_script((SQL_DIR / "knowledge_gap_days_keep_0039.sql").read_text())
    execute_script((SQL_DIR / "knowledge_gap_days_rebuild_0039.sql").read_text())
    _triggers(_KEY)
    op.execute("SELECT cybergine_knowledge_gap_days_rebuild(id) FROM organisations")
