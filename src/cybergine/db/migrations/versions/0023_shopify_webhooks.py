"""Shopify webhook deliveries, and the organisation status of a shop that uninstalled
the app.

Revision ID: 0023
Revises: 0022
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0023"
down_revision: str | None = "0022"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATUSES = ("received", "processed", "ignored", "failed")


def upgrade() -> None:
    # ADD VALUE cannot run inside a transaction block before PostgreSQL 12; since then it
    # can, as long as the new value is not used in the same transaction (it is not).
    op.execute("ALTER TYPE organisation_status ADD VALUE IF NOT EXISTS 'shop_uninstalled'")
    op.execute("ALTER TYPE privacy_request_channel ADD VALUE IF NOT EXISTS 'shopify'")
    op.create_table(
        "shopify_webhook_deliveries",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organisation_id", sa.UUID(), nullable=False),
        sa.Column("shop_id", sa.UUID(), nullable=False),
        sa.Column("topic", sa.String(length=100), nullable=False),
        sa.Column("webhook_id", sa.String(length=100), nullable=False),
        sa.Column("api_version", sa.String(length=32), nullable=True),
        sa.Column("triggered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("status", sa.Enum(*_STATUSES, name="shopify_webhook_status"), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("error", sa.String(length=500), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
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
            name=op.f("fk_shopify_webhook_deliveries_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["shop_id"],
            ["shopify_shops.id"],
            name=op.f("fk_shopify_webhook_deliveries_shop_id_shopify_shops"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shopify_webhook_deliveries")),
        sa.UniqueConstraint(
            "shop_id", "webhook_id", name=op.f("uq_shopify_webhook_deliveries_shop_id_webhook_id")
        ),
    )
    for column in ("organisation_id", "shop_id", "created_at"):
        op.create_index(
            op.f(f"ix_shopify_webhook_deliveries_{column}"),
            "shopify_webhook_deliveries",
            [column],
        )

    # Erasing a shop deletes its products' images; each deleted image looks up the
    # variants that show it (ON DELETE SET NULL), a scan of every variant without this.
    op.create_index(op.f("ix_catalog_variants_image_id"), "catalog_variants", ["image_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_catalog_variants_image_id"), table_name="catalog_variants")
    op.drop_table("shopify_webhook_deliveries")
    op.execute("DROP TYPE shopify_webhook_status")
    op.execute("DELETE FROM privacy_requests WHERE channel = 'shopify'")
    op.execute("ALTER TYPE privacy_request_channel RENAME TO privacy_request_channel_old")
    op.execute(
        "CREATE TYPE privacy_request_channel AS ENUM "
        "('whatsapp', 'webchat', 'dashboard', 'api', 'email')"
    )
    op.execute(
        "ALTER TABLE privacy_requests ALTER COLUMN channel TYPE privacy_request_channel "
        "USING channel::text::privacy_request_channel"
    )
    op.execute("DROP TYPE privacy_request_channel_old")
    # PostgreSQL cannot drop one value of an enum: the type is made again without it,
    # an uninstalled shop's organisation becoming active as it was before.
    op.execute("UPDATE organisations SET status = 'active' WHERE status = 'shop_uninstalled'")
    op.execute("ALTER TABLE organisations DROP CONSTRAINT ck_organisations_erase_after_iff_pending")
    op.execute("ALTER TABLE organisations ALTER COLUMN status DROP DEFAULT")
    op.execute("ALTER TYPE organisation_status RENAME TO organisation_status_old")
    op.execute("CREATE TYPE organisation_status AS ENUM ('active', 'pending_deletion')")
    op.execute(
        "ALTER TABLE organisations ALTER COLUMN status TYPE organisation_status "
        "USING status::text::organisation_status"
    )
    op.execute("ALTER TABLE organisations ALTER COLUMN status SET DEFAULT 'active'")
    op.execute("DROP TYPE organisation_status_old")
    op.execute(
        "ALTER TABLE organisations ADD CONSTRAINT ck_organisations_erase_after_iff_pending "
        "CHECK ((status = 'pending_deletion') = (erase_after IS NOT NULL))"
    )
