"""Shopify install and billing: the storefront embed's state as the embedded admin last saw
it, and the index a plan's monthly conversation allowance is counted with.

Revision ID: 0024
Revises: 0023
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0024"
down_revision: str | None = "0023"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("shopify_shops", sa.Column("embed_state", sa.String(length=16), nullable=True))
    op.add_column(
        "shopify_shops",
        sa.Column("embed_checked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index(
        op.f("ix_conversations_organisation_id_created_at"),
        "conversations",
        ["organisation_id", "created_at"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_conversations_organisation_id_created_at"), "conversations")
    op.drop_column("shopify_shops", "embed_checked_at")
    op.drop_column("shopify_shops", "embed_state")
