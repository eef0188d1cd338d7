"""Analytics: hourly aggregates per organisation, assistant and channel, their
breakdowns (model usage, sources cited, hand-off reasons), each organisation's refresh
mark, and the index the refresh finds changed conversations by.

Revision ID: 0028
Revises: 0027
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0028"
down_revision: str | None = "0027"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


_COUNTS = (
    "conversations",
    "answered_by_assistant",
    "resolved_by_assistant",
    "handed_to_person",
    "resolved",
    "with_fallback",
    "state_bot",
    "state_waiting_for_human",
    "state_human",
    "state_closed",
    "messages_in",
    "messages_out",
    "assistant_answers",
    "grounded_answers",
    "fallbacks",
    "prompt_tokens",
    "completion_tokens",
)
_DURATIONS = ("first_response", "agent_first_response", "human_first_response", "resolution")


def _base(table: str) -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assistant_id", sa.Uuid(), nullable=True),
        sa.Column("channel", postgresql.ENUM(name="channel", create_type=False), nullable=False),
    ]


def _stamps() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
    ]


def _constraints(table: str, *, item: bool) -> list[sa.Constraint]:
    key = ["organisation_id", "hour", "assistant_id", "channel", *(["item"] if item else [])]
    return [
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=f"fk_{table}_organisation_id_organisations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
        sa.UniqueConstraint(*key, name=f"uq_{table}_key", postgresql_nulls_not_distinct=True),
    ]


def _indexes(table: str) -> None:
    op.create_index(f"ix_{table}_organisation_id", table, ["organisation_id"])
    op.create_index(f"ix_{table}_organisation_id_hour", table, ["organisation_id", "hour"])


def _big(name: str) -> sa.Column:  # type: ignore[type-arg]
    return sa.Column(name, sa.BigInteger(), nullable=False)


def upgrade() -> None:
    op.create_index(
        "ix_conversations_organisation_id_updated_at",
        "conversations",
        ["organisation_id", "updated_at"],
    )

    durations = []
    for name in _DURATIONS:
        for kind in ("", "_business"):
            durations += [
                _big(f"{name}{kind}_count"),
                sa.Column(f"{name}{kind}_seconds", sa.Float(), nullable=False),
            ]
    op.create_table(
        "analytics_hourly",
        *_base("analytics_hourly"),
        *[_big(name) for name in _COUNTS],
        *durations,
        *_stamps(),
        *_constraints("analytics_hourly", item=False),
    )
    op.create_table(
        "analytics_hourly_model_usage",
        *_base("analytics_hourly_model_usage"),
        sa.Column("item", sa.String(201), nullable=False),
        sa.Column("provider", sa.String(100), nullable=True),
        sa.Column("model", sa.String(100), nullable=True),
        _big("answers"),
        _big("prompt_tokens"),
        _big("completion_tokens"),
        *_stamps(),
        *_constraints("analytics_hourly_model_usage", item=True),
    )
    op.create_table(
        "analytics_hourly_sources",
        *_base("analytics_hourly_sources"),
        sa.Column("item", sa.String(200), nullable=False),
        _big("citations"),
        *_stamps(),
        *_constraints("analytics_hourly_sources", item=True),
    )
    op.create_table(
        "analytics_hourly_reasons",
        *_base("analytics_hourly_reasons"),
        sa.Column("item", sa.String(64), nullable=False),
        _big("handoffs"),
        *_stamps(),
        *_constraints("analytics_hourly_reasons", item=True),
    )
    for table in (
        "analytics_hourly",
        "analytics_hourly_model_usage",
        "analytics_hourly_sources",
        "analytics_hourly_reasons",
    ):
        _indexes(table)

    op.create_table(
        "analytics_refresh_marks",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("refreshed_until", sa.DateTime(timezone=True), nullable=False),
        *_stamps(),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name="fk_analytics_refresh_marks_organisation_id_organisations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_analytics_refresh_marks"),
        sa.UniqueConstraint("organisation_id", name="uq_analytics_refresh_marks_organisation_id"),
    )
    op.create_index(
        "ix_analytics_refresh_marks_organisation_id",
        "analytics_refresh_marks",
        ["organisation_id"],
    )


def downgrade() -> None:
    for table in (
        "analytics_refresh_marks",
        "analytics_hourly_reasons",
        "analytics_hourly_sources",
        "analytics_hourly_model_usage",
        "analytics_hourly",
    ):
        op.drop_table(table)
    op.drop_index("ix_conversations_organisation_id_updated_at", table_name="conversations")
