"""Rate limits across processes: the counters of the widget's limits, shared by every web
process. Operational rows, pruned two hours after their window.

Revision ID: 0035
Revises: 0034
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0035"
down_revision: str | None = "0034"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rate_counters",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("organisation_id", sa.Uuid(), nullable=False),
        sa.Column("purpose", sa.String(length=40), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hits", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_rate_counters_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rate_counters")),
        sa.UniqueConstraint(
            "organisation_id",
            "purpose",
            "key_hash",
            "window_start",
            name=op.f("uq_rate_counters_organisation_id_purpose_key_hash_window_start"),
        ),
    )
    op.create_index(op.f("ix_rate_counters_organisation_id"), "rate_counters", ["organisation_id"])
    # The prune's range scan.
    op.create_index(op.f("ix_rate_counters_window_start"), "rate_counters", ["window_start"])


def downgrade() -> None:
    op.drop_index(op.f("ix_rate_counters_window_start"), table_name="rate_counters")
    op.drop_index(op.f("ix_rate_counters_organisation_id"), table_name="rate_counters")
    op.drop_table("rate_counters")
