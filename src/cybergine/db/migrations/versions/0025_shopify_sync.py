"""Shopify sync: its runs (progress, errors, where a run resumes) and the version of each
product and collection of a shop last applied.

Revision ID: 0025
Revises: 0024
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0025"
down_revision: str | None = "0024"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _timestamps() -> list[sa.Column]:  # type: ignore[type-arg]
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
    ]


def _owned(table: str) -> list[sa.Constraint]:
    return [
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f(f"fk_{table}_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shopify_shops.id"],
            name=op.f(f"fk_{table}_shop_id_shopify_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}")),
    ]


def upgrade() -> None:
    op.create_table(
        "shopify_sync_runs",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organisation_id", sa.UUID(), nullable=False),
        sa.Column("shop_id", sa.UUID(), nullable=False),
        sa.Column("kind", sa.Enum("full", "content", name="shopify_sync_kind"), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "queued", "running", "applying", "completed", "failed", name="shopify_sync_status"
            ),
            nullable=False,
        ),
        sa.Column("bulk_operation_id", sa.String(length=255), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=True),
        sa.Column("lines_applied", sa.Integer(), nullable=False),
        sa.Column("object_count", sa.Integer(), nullable=True),
        sa.Column("products_written", sa.Integer(), nullable=False),
        sa.Column("products_failed", sa.Integer(), nullable=False),
        sa.Column("products_deleted", sa.Integer(), nullable=False),
        sa.Column("documents_written", sa.Integer(), nullable=False),
        sa.Column("documents_removed", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=1000), nullable=True),
        sa.Column(
            "errors",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        *_timestamps(),
        *_owned("shopify_sync_runs"),
    )
    op.create_index(
        op.f("ix_shopify_sync_runs_organisation_id"),
        "shopify_sync_runs",
        ["organisation_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_shopify_sync_runs_shop_id_created_at"),
        "shopify_sync_runs",
        ["shop_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "shopify_source_versions",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organisation_id", sa.UUID(), nullable=False),
        sa.Column("shop_id", sa.UUID(), nullable=False),
        sa.Column(
            "kind", sa.Enum("product", "collection", name="shopify_source_kind"), nullable=False
        ),
        sa.Column("external_id", sa.String(length=255), nullable=False),
        sa.Column("source_updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted", sa.Boolean(), nullable=False),
        *_timestamps(),
        *_owned("shopify_source_versions"),
        sa.UniqueConstraint(
            "shop_id",
            "kind",
            "external_id",
            name=op.f("uq_shopify_source_versions_shop_id_kind_external_id"),
        ),
    )
    op.create_index(
        op.f("ix_shopify_source_versions_organisation_id"),
        "shopify_source_versions",
        ["organisation_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_shopify_source_versions_organisation_id"), table_name="shopify_source_versions"
    )
    op.drop_table("shopify_source_versions")
    op.drop_index(op.f("ix_shopify_sync_runs_shop_id_created_at"), table_name="shopify_sync_runs")
    op.drop_index(op.f("ix_shopify_sync_runs_organisation_id"), table_name="shopify_sync_runs")
    op.drop_table("shopify_sync_runs")
    for name in ("shopify_source_kind", "shopify_sync_status", "shopify_sync_kind"):
        sa.Enum(name=name).drop(op.get_bind(), checkfirst=True)
