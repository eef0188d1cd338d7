"""Security monitoring: ``security_signals`` (counts no audit entry gives, per minute)
and ``security_alerts`` (each alert raised, unique per window).

Revision ID: 0019
Revises: 0018
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _common() -> list[Any]:
    return [
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organisation_id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
    ]


def _stamps(table: str) -> list[Any]:
    return [
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f(f"fk_{table}_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    ]


def upgrade() -> None:
    op.create_table(
        "security_signals",
        *_common(),
        sa.Column("subject_id", sa.UUID(), nullable=False),
        sa.Column("minute", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        *_stamps("security_signals"),
        sa.UniqueConstraint(
            "organisation_id",
            "kind",
            "subject_id",
            "minute",
            name=op.f("uq_security_signals_organisation_id_kind_subject_id_minute"),
        ),
    )
    op.create_index(
        op.f("ix_security_signals_organisation_id"), "security_signals", ["organisation_id"]
    )
    op.create_table(
        "security_alerts",
        *_common(),
        sa.Column("subject_id", sa.UUID(), nullable=True),
        sa.Column("window_start", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_end", sa.DateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("threshold", sa.Integer(), nullable=False),
        *_stamps("security_alerts"),
        sa.UniqueConstraint(
            "organisation_id",
            "kind",
            "subject_id",
            "window_start",
            name=op.f("uq_security_alerts_organisation_id_kind_subject_id_window_start"),
            postgresql_nulls_not_distinct=True,
        ),
    )
    op.create_index(
        op.f("ix_security_alerts_organisation_id"), "security_alerts", ["organisation_id"]
    )


def downgrade() -> None:
    op.drop_table("security_alerts")
    op.drop_table("security_signals")
