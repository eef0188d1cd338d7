"""An organisation's product catalogue: products with their options, variants and
images, and the collections that group them (retention: the catalogue's, §8b).

The shapes follow Shopify's product resource, so a shop's export loads unchanged; any
organisation may keep its catalogue here, Shopify or not. Everything in these tables is
the shop's business data, not anyone's personal data.
"""

from __future__ import annotations

import enum
import uuid
from decimal import Decimal
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    ARRAY,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column, relationship

from cybergine.db.base import Base, TenantMixin, value_enum
from cybergine.knowledge.models import EMBEDDING_DIMENSIONS
from cybergine.privacy.retention import Retention

# Shopify's limits, so a catalogue that fits there fits here.
MAX_TITLE_LENGTH = 255
MAX_TAG_LENGTH = 255
MAX_TAGS = 250
MAX_OPTIONS = 3
MAX_OPTION_VALUES = 100
MAX_VARIANTS = 100
MAX_IMAGES = 250
MAX_URL_LENGTH = 2048
MAX_ALT_LENGTH = 512
MAX_BODY_LENGTH = 512_000
CURRENCY_LENGTH = 3
# Prices: up to 999,999,999,999.99 in the currency's major unit.
PRICE = Numeric(14, 2)


class ProductStatus(enum.StrEnum):
    ACTIVE = "active"
    DRAFT = "draft"
    ARCHIVED = "archived"


class InventoryPolicy(enum.StrEnum):
    # Out of stock: refuse orders ("deny") or keep selling ("continue").
    DENY = "deny"
    CONTINUE = "continue"


class Product(TenantMixin, Base):
    __tablename__ = "catalog_products"
    __retention__ = Retention.CATALOGUE
    __table_args__ = (
        UniqueConstraint("organisation_id", "handle"),
        # The id the shop's own system knows the product by (Shopify's product id):
        # importing the same export again updates rather than duplicates.
        UniqueConstraint("organisation_id", "external_id"),
        # Lists: newest first, optionally of one status.
        Index("ix_catalog_products_organisation_id_status_id", "organisation_id", "status", "id"),
    )

    title: Mapped[str] = mapped_column(String(MAX_TITLE_LENGTH))
    body_html: Mapped[str] = mapped_column(Text, default="")
    vendor: Mapped[str] = mapped_column(String(MAX_TITLE_LENGTH), default="")
    product_type: Mapped[str] = mapped_column(String(MAX_TITLE_LENGTH), default="")
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(MAX_TAG_LENGTH)), default=list)
    status: Mapped[ProductStatus] = mapped_column(
        value_enum(ProductStatus, "catalog_product_status"), default=ProductStatus.ACTIVE
    )
    # The URL-safe name ("ipod-nano"), unique in the organisation; rows of one product in
    # a product CSV share it.
    handle: Mapped[str] = mapped_column(String(MAX_TITLE_LENGTH))
    # The product's page on the shop's site, when known.
    url: Mapped[str | None] = mapped_column(String(MAX_URL_LENGTH), default=None)
    published: Mapped[bool] = mapped_column(Boolean, default=True)
    external_id: Mapped[str | None] = mapped_column(String(255), default=None)
    # ISO 4217 code of the variants' prices.
    currency: Mapped[str] = mapped_column(String(CURRENCY_LENGTH), default="USD")

    # Read with the product (``catalog.service``); written row by row, so a product's
    # new options, variants and images replace the old ones in one statement each.
    options: Mapped[list[ProductOption]] = relationship(
        order_by="ProductOption.position",
        viewonly=True,
        lazy="raise",
    )
    variants: Mapped[list[Variant]] = relationship(
        order_by="Variant.position",
        viewonly=True,
        lazy="raise",
    )
    images: Mapped[list[ProductImage]] = relationship(
        order_by="ProductImage.position",
        viewonly=True,
        lazy="raise",
    )
    collections: Mapped[list[CatalogCollection]] = relationship(
        secondary="catalog_collection_products",
        order_by="CatalogCollection.handle",
        viewonly=True,
        lazy="raise",
    )


class ProductOption(TenantMixin, Base):
    """One of a product's (at most three) options: "Size" with "S", "M", "L"."""

    __tablename__ = "catalog_product_options"
    __retention__ = Retention.CATALOGUE
    __table_args__ = (UniqueConstraint("product_id", "position"),)

    product_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("catalog_products.id", ondelete="CASCADE")
    )
    name: Mapped[str] = mapped_column(String(MAX_TITLE_LENGTH))
    position: Mapped[int] = mapped_column(Integer)
    values: Mapped[list[str]] = mapped_column(ARRAY(String(MAX_TITLE_LENGTH)), default=list)


class ProductImage(TenantMixin, Base):
    __tablename__ = "catalog_images"
    __retention__ = Retention.CATALOGUE
    __table_args__ = (UniqueConstraint("product_id", "position"),)

    product_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("catalog_products.id", ondelete="CASCADE")
    )
    src: Mapped[str] = mapped_column(String(MAX_URL_LENGTH))
    alt: Mapped[str] = mapped_column(String(MAX_ALT_LENGTH), default="")
    position: Mapped[int] = mapped_column(Integer)


class Variant(TenantMixin, Base):
    """One purchasable combination of a product's option values, with its price and
    stock."""

    __tablename__ = "catalog_variants"
    __retention__ = Retention.CATALOGUE
    __table_args__ = (
        UniqueConstraint("product_id", "position"),
        Index("ix_catalog_variants_organisation_id_sku", "organisation_id", "sku"),
    )

    product_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("catalog_products.id", ondelete="CASCADE")
    )
    position: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(MAX_TITLE_LENGTH))
    option1: Mapped[str | None] = mapped_column(String(MAX_TITLE_LENGTH), default=None)
    option2: Mapped[str | None] = mapped_column(String(MAX_TITLE_LENGTH), default=None)
    option3: Mapped[str | None] = mapped_column(String(MAX_TITLE_LENGTH), default=None)
    price: Mapped[Decimal] = mapped_column(PRICE)
    compare_at_price: Mapped[Decimal | None] = mapped_column(PRICE, default=None)
    currency: Mapped[str] = mapped_column(String(CURRENCY_LENGTH))
    sku: Mapped[str] = mapped_column(String(255), default="")
    # None: stock is not tracked, so the variant is always available.
    inventory_quantity: Mapped[int | None] = mapped_column(Integer, default=None)
    inventory_policy: Mapped[InventoryPolicy] = mapped_column(
        value_enum(InventoryPolicy, "catalog_inventory_policy"), default=InventoryPolicy.DENY
    )
    # The image shown for this variant (one of its product's). Indexed: deleting images
    # (a product, a shop's erasure) looks up the variants pointing at each one.
    image_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("catalog_images.id", ondelete="SET NULL"), default=None, index=True
    )

    @property
    def available(self) -> bool:
        """Whether it can be ordered now: computed, never stored, so stock and policy
        cannot disagree with it."""
        return (
            self.inventory_quantity is None
            or self.inventory_quantity > 0
            or self.inventory_policy == InventoryPolicy.CONTINUE
        )


class CatalogCollection(TenantMixin, Base):
    """A named group of products ("Summer sale"), as Shopify's collections."""

    __tablename__ = "catalog_collections"
    __retention__ = Retention.CATALOGUE
    __table_args__ = (
        UniqueConstraint("organisation_id", "handle"),
        UniqueConstraint("organisation_id", "external_id"),
    )

    title: Mapped[str] = mapped_column(String(MAX_TITLE_LENGTH))
    handle: Mapped[str] = mapped_column(String(MAX_TITLE_LENGTH))
    external_id: Mapped[str | None] = mapped_column(String(255), default=None)


class CollectionMembership(TenantMixin, Base):
    __tablename__ = "catalog_collection_products"
    __retention__ = Retention.CATALOGUE
    __table_args__ = (UniqueConstraint("collection_id", "product_id"),)

    collection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("catalog_collections.id", ondelete="CASCADE")
    )
    product_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("catalog_products.id", ondelete="CASCADE"), index=True
    )


class ProductSearchRow(TenantMixin, Base):
    """What product search reads for one product (``catalog.search``): derived from the
    product's rows by ``catalog.search_index`` whenever it is written, so search is one
    indexed table and never re-reads the whole catalogue. ``visible``: the product may be
    shown at all (active and published); ``document``: the text its vector was made
    from, with ``document_hash``, so an unchanged product is never embedded again."""

    __tablename__ = "catalog_product_search"
    __retention__ = Retention.CATALOGUE
    __table_args__ = (
        Index(None, "tsv", postgresql_using="gin"),
        Index(None, "option_values", postgresql_using="gin"),
        Index(
            None,
            "embedding",
            postgresql_using="hnsw",
            postgresql_with={"m": 16, "ef_construction": 64},
            postgresql_ops={"embedding": "vector_cosine_ops"},
        ),
    )

    product_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("catalog_products.id", ondelete="CASCADE"), unique=True
    )
    visible: Mapped[bool] = mapped_column(Boolean)
    document: Mapped[str] = mapped_column(Text)
    document_hash: Mapped[str] = mapped_column(String(32))
    tsv: Mapped[Any] = mapped_column(TSVECTOR)
    # The product's option values, lower-cased ("42", "black"): which words of a question
    # are values the catalogue really has (``catalog.search.known_option_values``).
    option_values: Mapped[list[str]] = mapped_column(ARRAY(String(MAX_TITLE_LENGTH)))
    # What one of its variants at least has: a search skips a product whose prices, currency
    # or stock cannot meet the filters before checking its variants one by one.
    currency: Mapped[str] = mapped_column(String(CURRENCY_LENGTH))
    min_price: Mapped[Decimal | None] = mapped_column(PRICE, default=None)
    max_price: Mapped[Decimal | None] = mapped_column(PRICE, default=None)
    available: Mapped[bool] = mapped_column(Boolean)
    # Each variant's id, title, price, compare-at price, currency, stock ("a") and option
    # values: the filters and the cards read them here, in the row already fetched.
    variants: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    embedding: Mapped[Any | None] = mapped_column(Vector(EMBEDDING_DIMENSIONS), default=None)
    embedding_model: Mapped[str | None] = mapped_column(String(100), default=None)
