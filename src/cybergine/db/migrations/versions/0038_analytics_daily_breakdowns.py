"""Analytics: the breakdowns (model usage, sources cited, hand-off reasons, embedding
usage) also kept per UTC day, so a long period reads a row per day for its whole days
and hourly rows only for its edges. The daily rows are filled from the hourly ones.

The knowledge gap questions' index by organisation and time carries what the report
counts (group, conversation, cause, assistant, channel), so a year's questions are
counted from the index rather than from rows made wide by their vectors.

Revision ID: 0038
Revises: 0037
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0038"
down_revision: str | None = "0037"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _channel() -> sa.Column[Any]:
    return sa.Column("channel", postgresql.ENUM(name="channel", create_type=False), nullable=False)


def _counts(*names: str) -> list[sa.Column[Any]]:
    return [sa.Column(name, sa.BigInteger(), nullable=False) for name in names]


# Each daily table: its hourly table, its columns besides the common ones, its key
# columns besides organisation and day, and the columns summed.
_TABLES: dict[str, tuple[str, list[sa.Column[Any]], list[str], list[str]]] = {
    "analytics_daily_model_usage": (
        "analytics_hourly_model_usage",
        [
            sa.Column("assistant_id", sa.Uuid(), nullable=True),
            _channel(),
            sa.Column("item", sa.String(201), nullable=False),
            sa.Column("provider", sa.String(100), nullable=True),
            sa.Column("model", sa.String(100), nullable=True),
            *_counts("answers", "prompt_tokens", "completion_tokens"),
        ],
        ["assistant_id", "channel", "item"],
        ["answers", "prompt_tokens", "completion_tokens"],
    ),
    "analytics_daily_sources": (
        "analytics_hourly_sources",
        [
            sa.Column("assistant_id", sa.Uuid(), nullable=True),
            _channel(),
            sa.Column("item", sa.String(200), nullable=False),
            *_counts("citations"),
        ],
        ["assistant_id", "channel", "item"],
        ["citations"],
    ),
    "analytics_daily_reasons": (
        "analytics_hourly_reasons",
        [
            sa.Column("assistant_id", sa.Uuid(), nullable=True),
            _channel(),
            sa.Column("item", sa.String(64), nullable=False),
            *_counts("handoffs"),
        ],
        ["assistant_id", "channel", "item"],
        ["handoffs"],
    ),
    "analytics_daily_embeddings": (
        "analytics_hourly_embeddings",
        [
            sa.Column("assistant_id", sa.Uuid(), nullable=True),
            sa.Column("provider", sa.String(100), nullable=False),
            sa.Column("model", sa.String(100), nullable=False),
            sa.Column("purpose", sa.String(32), nullable=False),
            *_counts("requests", "inputs", "prompt_tokens"),
        ],
        ["assistant_id", "provider", "model", "purpose"],
        ["requests", "inputs", "prompt_tokens"],
    ),
}


def upgrade() -> None:
    for table, (hourly, columns, key, sums) in _TABLES.items():
        op.create_table(
            table,
            sa.Column("id", sa.Uuid(), nullable=False),
            sa.Column("organisation_id", sa.Uuid(), nullable=False),
            sa.Column("day", sa.DateTime(timezone=True), nullable=False),
            *columns,
            sa.Column(
                "created_at",
                sa.DateTime(timezone=True),
                server_default=sa.func.now(),
                nullable=False,
            ),
            sa.Column(
                "updated_at",
                sa.DateTime(timezone=True),
                server_default=sa.func.now(),
                nullable=False,
            ),
            sa.ForeignKeyConstraint(
                ["organisation_id"],
                ["organisations.id"],
                name=f"fk_{table}_organisation_id_organisations",
                ondelete="CASCADE",
            ),
            sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
            sa.UniqueConstraint(
                "organisation_id",
                "day",
                *key,
                name=f"uq_{table}_key",
                postgresql_nulls_not_distinct=True,
            ),
        )
        op.create_index(f"ix_{table}_organisation_id", table, ["organisation_id"])
        op.create_index(f"ix_{table}_organisation_id_day", table, ["organisation_id", "day"])
        names = [column.name for column in columns if column.name not in sums]
        grouped = ", ".join(names)
        op.execute(
            f"""
            INSERT INTO {table} (id, organisation_id, day, created_at, updated_at,
                                 {grouped}, {", ".join(sums)})
            SELECT gen_random_uuid(), organisation_id, day, day, now(), {grouped},
                   {", ".join(f"sum({name})" for name in sums)}
              FROM (SELECT date_trunc('day', h.hour AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                               AS day, h.*
                      FROM {hourly} h) AS hours
             GROUP BY organisation_id, day, {grouped}
            """  # noqa: S608
        )

    _gap_index(["group_id", "conversation_id", "cause", "assistant_id", "channel"])


def _gap_index(include: list[str]) -> None:
    name = "ix_knowledge_gap_questions_organisation_id_created_at"
    op.drop_index(name, table_name="knowledge_gap_questions")
    op.create_index(
        name,
        "knowledge_gap_questions",
        ["organisation_id", "created_at"],
        postgresql_include=include,
    )


def downgrade() -> None:
    _gap_index([])
    for table in reversed(_TABLES):
        op.drop_table(table)
