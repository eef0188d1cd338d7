"""The API usage log: one row per request made with an API key (usage logs, kept 12
months). Model prices are settings (``CYBERGINE_MODEL_PRICES``), not rows.

Revision ID: 0030
Revises: 0029
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0030"
down_revision: str | None = "0029"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_usage_log",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("api_key_id", sa.Uuid(), nullable=False),
        sa.Column("method", sa.String(length=10), nullable=False),
        sa.Column("route", sa.String(length=300), nullable=False),
        sa.Column("status", sa.SmallInteger(), nullable=False),
        sa.Column("latency_ms", sa.Float(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name="fk_api_usage_log_organisation_id_organisations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_api_usage_log"),
    )
    op.create_index("ix_api_usage_log_organisation_id", "api_usage_log", ["organisation_id"])
    op.create_index(
        "ix_api_usage_log_organisation_id_created_at",
        "api_usage_log",
        ["organisation_id", "created_at"],
    )
    op.create_index(
        "ix_api_usage_log_created_at_brin",
        "api_usage_log",
        ["created_at"],
        postgresql_using="brin",
    )


def downgrade() -> None:
    op.drop_table("api_usage_log")
