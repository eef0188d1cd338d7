"""Analytics: the embedding calls to a billed endpoint, per organisation, hour,
assistant, provider, model and purpose (requests, texts, tokens), so their cost is
counted beside the answers' (aggregated analytics, kept 2 years).

Revision ID: 0033
Revises: 0032
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0033"
down_revision: str | None = "0032"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "analytics_hourly_embeddings"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("assistant_id", sa.Uuid(), nullable=True),
        sa.Column("provider", sa.String(100), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("purpose", sa.String(32), nullable=False),
        sa.Column("requests", sa.BigInteger(), nullable=False),
        sa.Column("inputs", sa.BigInteger(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=f"fk_{TABLE}_organisation_id_organisations",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=f"pk_{TABLE}"),
        sa.UniqueConstraint(
            "organisation_id",
            "hour",
            "assistant_id",
            "provider",
            "model",
            "purpose",
            name=f"uq_{TABLE}_key",
            postgresql_nulls_not_distinct=True,
        ),
    )
    op.create_index(f"ix_{TABLE}_organisation_id", TABLE, ["organisation_id"])
    op.create_index(f"ix_{TABLE}_organisation_id_hour", TABLE, ["organisation_id", "hour"])


def downgrade() -> None:
    op.drop_table(TABLE)
