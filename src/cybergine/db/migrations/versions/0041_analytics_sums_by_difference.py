"""Analytics: a conversation's row of figures keeps everything the aggregates count of
it (its CSAT outcome, its model usage and sources cited), so the refresh moves the
aggregates by the difference between a changed conversation's old row and its new one
instead of summing its whole hour and day again; the daily customer counts get the key
the refresh adds to.

The rows written before lack the new columns, so the refresh marks are removed: the next
refresh recomputes every row and aggregate from the raw rows, as a rebuild does.

Revision ID: 0041
Revises: 0040
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0041"
down_revision: str | None = "0040"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FACTS = "analytics_conversations"
_CUSTOMERS = "analytics_daily_customers"
_OUTCOMES = ("csat_surveys_sent", "csat_responses", "csat_positive")
_LISTS = ("model_usage", "cited_sources")


def upgrade() -> None:
    for name in _OUTCOMES:
        op.add_column(
            _FACTS, sa.Column(name, sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    for name in _LISTS:
        op.add_column(
            _FACTS,
            sa.Column(
                name,
                postgresql.JSONB(astext_type=sa.Text()),
                server_default=sa.text("'[]'::jsonb"),
                nullable=False,
            ),
        )
    op.create_unique_constraint(
        f"uq_{_CUSTOMERS}_key",
        _CUSTOMERS,
        ["organisation_id", "day", "previous_day", "per_assistant", "assistant_id", "channel"],
        postgresql_nulls_not_distinct=True,
    )
    op.execute("DELETE FROM analytics_refresh_marks")


def downgrade() -> None:
    op.drop_constraint(f"uq_{_CUSTOMERS}_key", _CUSTOMERS, type_="unique")
    for name in (*_LISTS, *_OUTCOMES):
        op.drop_column(_FACTS, name)
    op.execute("DELETE FROM analytics_refresh_marks")
