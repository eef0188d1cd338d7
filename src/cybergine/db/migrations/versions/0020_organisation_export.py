"""Whole-organisation exports during the deletion grace period: ``organisation_exports``.

Revision ID: 0020
Revises: 0019
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUSES = ("queued", "building", "ready", "downloaded", "expired", "failed")


def _at(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    status = postgresql.ENUM(*_STATUSES, name="organisation_export_status")
    status.create(op.get_bind())
    op.create_table(
        "organisation_exports",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organisation_id", sa.UUID(), nullable=False),
        sa.Column(
            "status",
            postgresql.ENUM(*_STATUSES, name="organisation_export_status", create_type=False),
            nullable=False,
        ),
        sa.Column("requested_by_user_id", sa.UUID(), nullable=True),
        sa.Column("file_name", sa.String(length=100), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("counts", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        _at("ready_at"),
        _at("expires_at"),
        _at("downloaded_at"),
        sa.Column("link_token_hash", sa.String(length=64), nullable=True),
        _at("link_expires_at"),
        sa.Column("error", sa.String(length=200), nullable=True),
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
            name=op.f("fk_organisation_exports_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_user_id"],
            ["users.id"],
            name=op.f("fk_organisation_exports_requested_by_user_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_organisation_exports")),
        sa.UniqueConstraint(
            "link_token_hash", name=op.f("uq_organisation_exports_link_token_hash")
        ),
    )
    op.create_index(
        op.f("ix_organisation_exports_organisation_id"),
        "organisation_exports",
        ["organisation_id"],
    )
    # One export in preparation per organisation, whatever the races.
    op.create_index(
        "uq_organisation_exports_one_in_progress",
        "organisation_exports",
        ["organisation_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('queued', 'building')"),
    )


def downgrade() -> None:
    op.drop_table("organisation_exports")
    postgresql.ENUM(name="organisation_export_status").drop(op.get_bind())
