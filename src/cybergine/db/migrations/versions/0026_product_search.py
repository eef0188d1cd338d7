"""Product search: one row per product with its weighted tsvector, its option values and
its embedding (``catalog_product_search``, kept by ``catalog.search_index``).

Revision ID: 0026
Revises: 0025
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from pgvector.sqlalchemy import Vector
from sqlalchemy.dialects import postgresql

revision: str = "0026"
down_revision: str | None = "0025"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "catalog_product_search",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("organisation_id", sa.UUID(), nullable=False),
        sa.Column("product_id", sa.UUID(), nullable=False),
        sa.Column("visible", sa.Boolean(), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("document_hash", sa.String(length=32), nullable=False),
        sa.Column("tsv", postgresql.TSVECTOR(), nullable=False),
        sa.Column("option_values", sa.ARRAY(sa.String(length=255)), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("min_price", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("max_price", sa.Numeric(precision=14, scale=2), nullable=True),
        sa.Column("available", sa.Boolean(), nullable=False),
        sa.Column("variants", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("embedding", Vector(384), nullable=True),
        sa.Column("embedding_model", sa.String(length=100), nullable=True),
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
            name=op.f("fk_catalog_product_search_organisation_id_organisations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["product_id"],
            ["catalog_products.id"],
            name=op.f("fk_catalog_product_search_product_id_catalog_products"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_catalog_product_search")),
        sa.UniqueConstraint("product_id", name=op.f("uq_catalog_product_search_product_id")),
    )
    op.create_index(
        op.f("ix_catalog_product_search_organisation_id"),
        "catalog_product_search",
        ["organisation_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_catalog_product_search_tsv"),
        "catalog_product_search",
        ["tsv"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index(
        op.f("ix_catalog_product_search_option_values"),
        "catalog_product_search",
        ["option_values"],
        unique=False,
        postgresql_using="gin",
    )
    op.create_index(
        op.f("ix_catalog_product_search_embedding"),
        "catalog_product_search",
        ["embedding"],
        unique=False,
        postgresql_using="hnsw",
        postgresql_with={"m": 16, "ef_construction": 64},
        postgresql_ops={"embedding": "vector_cosine_ops"},
    )


def downgrade() -> None:
    op.drop_table("catalog_product_search")
