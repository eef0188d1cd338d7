"""The product catalogue: products, their options, variants and images, collections
and which products they hold.

Revision ID: 0021
Revises: 0020
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "catalog_collections",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organisation_id", sa.UUID(), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("handle", sa.String(length=255), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
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
            name=op.f("fk_catalog_collections_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_collections")),
        sa.UniqueConstraint(
            "organisation_id",
            "external_id",
            name=op.f("uq_catalog_collections_organisation_id_external_id"),
        ),
        sa.UniqueConstraint(
            "organisation_id", "handle", name=op.f("uq_catalog_collections_organisation_id_handle")
        ),
    )
    op.create_index(
        op.f("ix_catalog_collections_organisation_id"),
        "catalog_collections",
        ["organisation_id"],
        unique=False,
    )
    op.create_table(
        "catalog_products",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organisation_id", sa.UUID(), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("body_html", sa.Text(), nullable=False),
        sa.Column("vendor", sa.String(length=255), nullable=False),
        sa.Column("product_type", sa.String(length=255), nullable=False),
        sa.Column("tags", sa.ARRAY(sa.String(length=255)), nullable=False),
        sa.Column(
            "status",
            sa.Enum("active", "draft", "archived", name="catalog_product_status"),
            nullable=False,
        ),
        sa.Column("handle", sa.String(length=255), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=True),
        sa.Column("published", sa.Boolean(), nullable=False),
        sa.Column("external_id", sa.String(length=255), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
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
            name=op.f("fk_catalog_products_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_products")),
        sa.UniqueConstraint(
            "organisation_id",
            "external_id",
            name=op.f("uq_catalog_products_organisation_id_external_id"),
        ),
        sa.UniqueConstraint(
            "organisation_id", "handle", name=op.f("uq_catalog_products_organisation_id_handle")
        ),
    )
    op.create_index(
        op.f("ix_catalog_products_organisation_id"),
        "catalog_products",
        ["organisation_id"],
        unique=False,
    )
    op.create_index(
        "ix_catalog_products_organisation_id_status_id",
        "catalog_products",
        ["organisation_id", "status", "id"],
        unique=False,
    )
    op.create_table(
        "catalog_collection_products",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organisation_id", sa.UUID(), nullable=False),
        sa.Column("collection_id", sa.UUID(), nullable=False),
        sa.Column("product_id", sa.UUID(), nullable=False),
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
            ["collection_id"],
            ["catalog_collections.id"],
            name=op.f("fk_catalog_collection_products_collection_id_catalog_collections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_catalog_collection_products_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["catalog_products.id"],
            name=op.f("fk_catalog_collection_products_product_id_catalog_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_collection_products")),
        sa.UniqueConstraint(
            "collection_id",
            "product_id",
            name=op.f("uq_catalog_collection_products_collection_id_product_id"),
        ),
    )
    op.create_index(
        op.f("ix_catalog_collection_products_organisation_id"),
        "catalog_collection_products",
        ["organisation_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_catalog_collection_products_product_id"),
        "catalog_collection_products",
        ["product_id"],
        unique=False,
    )
    op.create_table(
        "catalog_images",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organisation_id", sa.UUID(), nullable=False),
        sa.Column("product_id", sa.UUID(), nullable=False),
        sa.Column("src", sa.String(length=2048), nullable=False),
        sa.Column("alt", sa.String(length=512), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
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
            name=op.f("fk_catalog_images_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["catalog_products.id"],
            name=op.f("fk_catalog_images_product_id_catalog_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_images")),
        sa.UniqueConstraint(
            "product_id", "position", name=op.f("uq_catalog_images_product_id_position")
        ),
    )
    op.create_index(
        op.f("ix_catalog_images_organisation_id"),
        "catalog_images",
        ["organisation_id"],
        unique=False,
    )
    op.create_table(
        "catalog_product_options",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organisation_id", sa.UUID(), nullable=False),
        sa.Column("product_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("values", sa.ARRAY(sa.String(length=255)), nullable=False),
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
            name=op.f("fk_catalog_product_options_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["catalog_products.id"],
            name=op.f("fk_catalog_product_options_product_id_catalog_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_product_options")),
        sa.UniqueConstraint(
            "product_id", "position", name=op.f("uq_catalog_product_options_product_id_position")
        ),
    )
    op.create_index(
        op.f("ix_catalog_product_options_organisation_id"),
        "catalog_product_options",
        ["organisation_id"],
        unique=False,
    )
    op.create_table(
        "catalog_variants",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organisation_id", sa.UUID(), nullable=False),
        sa.Column("product_id", sa.UUID(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("title", sa.String(length=255), nullable=False),
        sa.Column("option1", sa.String(length=255), nullable=True),
        sa.Column("option2", sa.String(length=255), nullable=True),
        sa.Column("option3", sa.String(length=255), nullable=True),
        sa.Column("price", sa.Numeric(precision=14, scale=2), nullable=False),
        sa.Column("compare_at_price", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("sku", sa.String(length=255), nullable=False),
        sa.Column("inventory_quantity", sa.Integer(), nullable=True),
        sa.Column(
            "inventory_policy",
            sa.Enum("deny", "continue", name="catalog_inventory_policy"),
            nullable=False,
        ),
        sa.Column("image_id", sa.UUID(), nullable=True),
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
            ["image_id"],
            ["catalog_images.id"],
            name=op.f("fk_catalog_variants_image_id_catalog_images"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["organisation_id"],
            ["organisations.id"],
            name=op.f("fk_catalog_variants_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["catalog_products.id"],
            name=op.f("fk_catalog_variants_product_id_catalog_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_variants")),
        sa.UniqueConstraint(
            "product_id", "position", name=op.f("uq_catalog_variants_product_id_position")
        ),
    )
    op.create_index(
        op.f("ix_catalog_variants_organisation_id"),
        "catalog_variants",
        ["organisation_id"],
        unique=False,
    )
    op.create_index(
        "ix_catalog_variants_organisation_id_sku",
        "catalog_variants",
        ["organisation_id", "sku"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_catalog_variants_organisation_id_sku", table_name="catalog_variants")
    op.drop_index(op.f("ix_catalog_variants_organisation_id"), table_name="catalog_variants")
    op.drop_table("catalog_variants")
    op.drop_index(
        op.f("ix_catalog_product_options_organisation_id"), table_name="catalog_product_options"
    )
    op.drop_table("catalog_product_options")
    op.drop_index(op.f("ix_catalog_images_organisation_id"), table_name="catalog_images")
    op.drop_table("catalog_images")
    op.drop_index(
        op.f("ix_catalog_collection_products_product_id"), table_name="catalog_collection_products"
    )
    op.drop_index(
        op.f("ix_catalog_collection_products_organisation_id"),
        table_name="catalog_collection_products",
    )
    op.drop_table("catalog_collection_products")
    op.drop_index("ix_catalog_products_organisation_id_status_id", table_name="catalog_products")
    op.drop_index(op.f("ix_catalog_products_organisation_id"), table_name="catalog_products")
    op.drop_table("catalog_products")
    op.drop_index(op.f("ix_catalog_collections_organisation_id"), table_name="catalog_collections")
    op.drop_table("catalog_collections")
    sa.Enum(name="catalog_inventory_policy").drop(op.get_bind())
    sa.Enum(name="catalog_product_status").drop(op.get_bind())
