"""Analytics: one row of figures per conversation (``analytics_conversations``, written by
the refresh: the aggregates, the CSV export and the count of distinct customers read it),
response-time buckets in the hourly aggregates (the distributions read them instead of
every conversation), and the index the refresh finds changed
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
from sqlalchemy.dialects import postgresql

revision: str = "0032"
down_revision: str | None = "0031"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_RESPONSE_TIMES = ("first_response", "agent_first_response")
_BUCKETS = 9


def _bucket_columns() -> list[str]:
    return [f"{duration}_bucket_{i}" for duration in _RESPONSE_TIMES for i in range(_BUCKETS)]


_COUNTS = (
    "messages_in",
    "messages_out",
    "assistant_answers",
    "grounded_answers",
    "fallbacks",
    "prompt_tokens",
    "completion_tokens",
)
_OUTCOMES = (
    "answered_by_assistant",
    "resolved_by_assistant",
    "handed_to_person",
    "resolved",
    "with_fallback",
)
_DURATIONS = ("first_response", "agent_first_response", "human_first_response", "resolution")


def _moment(name: str, *, nullable: bool = True) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _create_facts() -> None:
    table = "analytics_conversations"
    op.create_table(
        table,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("conversation_version", sa.BigInteger(), nullable=False),
        sa.Column("assistant_id", sa.Uuid(), nullable=True),
        sa.Column("channel", postgresql.ENUM(name="channel", create_type=False), nullable=False),
        sa.Column(
            "state",
            postgresql.ENUM(name="conversation_state", create_type=False),
            nullable=False,
        ),
        _moment("started_at", nullable=False),
        _moment("hour", nullable=False),
        _moment("previous_at"),
        _moment("previous_with_assistant_at"),
        _moment("handoff_at"),
        sa.Column("handoff_reason", sa.String(64), nullable=True),
        _moment("resolved_at"),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in _COUNTS),
        *(sa.Column(name, sa.Boolean(), nullable=False) for name in _OUTCOMES),
        *(
            sa.Column(f"{name}{kind}_seconds", sa.Float(), nullable=True)
            for name in _DURATIONS
            for kind in ("", "_business")
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=f"fk_{table}_organisation_id_organisations",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=f"fk_{table}_conversation_id_conversations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
        sa.UniqueConstraint("conversation_id", name=f"uq_{table}_conversation_id"),
    )
    op.create_index(f"ix_{table}_organisation_id", table, ["organisation_id"])
    op.create_index(
        f"ix_{table}_organisation_id_started_at",
        table,
        ["organisation_id", "started_at"],
        postgresql_include=["assistant_id", "channel", "previous_at", "previous_with_assistant_at"],
    )
    op.create_index(f"ix_{table}_previous", table, ["organisation_id", "previous_at"])
    op.create_index(
        f"ix_{table}_previous_with_assistant",
        table,
        ["organisation_id", "previous_with_assistant_at"],
    )
    daily = "analytics_daily_customers"
    op.create_table(
        daily,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        _moment("day", nullable=False),
        _moment("previous_day"),
        sa.Column("per_assistant", sa.Boolean(), nullable=False),
        sa.Column("assistant_id", sa.Uuid(), nullable=True),
        sa.Column("channel", postgresql.ENUM(name="channel", create_type=False), nullable=False),
        sa.Column("conversations", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=f"fk_{daily}_organisation_id_organisations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=f"pk_{daily}"),
    )
    op.create_index(f"ix_{daily}_organisation_id", daily, ["organisation_id"])
    op.create_index(f"ix_{daily}_organisation_id_day", daily, ["organisation_id", "day"])


def upgrade() -> None:
    _create_facts()
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
    op.drop_table("analytics_daily_customers")
    op.drop_table("analytics_conversations")
    for name in _bucket_columns():
        op.drop_column("analytics_hourly", name)
    op.drop_index("ix_conversations_updated_at", table_name="conversations")
    op.create_index(
        "ix_conversations_organisation_id_updated_at",
        "conversations",
        ["organisation_id", "updated_at"],
    )
