"""Analytics: response-time buckets in the hourly aggregates (the distributions read
them instead of every conversation), and the index the refresh finds changed
conversations by becomes a BRIN index on ``updated_at`` (a few bytes per range of pages,
nothing per row: the writers of conversations no longer maintain a B-tree entry per
insert and update). Every organisation's refresh mark is removed, so the next refresh
recomputes its history with the new columns (``cybergine analytics rebuild`` does the
same at once).

Revision ID: 0032
Revises: 0031
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RESPONSE_TIMES = ("first_response", "agent_first_response")
_BUCKETS = 9


def _bucket_columns() -> list[str]:
    return [f"{duration}_bucket_{i}" for duration in _RESPONSE_TIMES for i in range(_BUCKETS)]


def upgrade() -> None:
    op.drop_index("ix_conversations_organisation_id_updated_at", table_name="conversations")
    op.create_index(
        "ix_conversations_updated_at",
        "conversations",
        ["updated_at"],
        postgresql_using="brin",
        postgresql_with={"pages_per_range": 8, "autosummarize": "on"},
    )
    for name in _bucket_columns():
        op.add_column(
            "analytics_hourly",
            sa.Column(name, sa.BigInteger(), server_default="0", nullable=False),
        )
    op.execute("DELETE FROM analytics_refresh_marks")


def downgrade() -> None:
    for name in _bucket_columns():
        op.drop_column("analytics_hourly", name)
    op.drop_index("ix_conversations_updated_at", table_name="conversations")
    op.create_index(
        "ix_conversations_organisation_id_updated_at",
        "conversations",
        ["organisation_id", "updated_at"],
    )
