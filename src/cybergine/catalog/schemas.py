"""API shapes of the catalogue. A product comes in as Shopify's REST Admin product
resource (``ProductIn``, also wrapped as ``{"product": {...}}``), checked by
``shape.read_product``; fields Shopify sends that the catalogue does not keep are
ignored."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from cybergine.catalog.models import (
    CatalogCollection,
    InventoryPolicy,
    Product,
    ProductImage,
    ProductOption,
    ProductStatus,
    Variant,
)

_Text = str | int | float | None


class OptionIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str
    values: list[str] = []


class VariantIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    title: _Text = None
    option1: _Text = None
    option2: _Text = None
    option3: _Text = None
    price: _Text = Field(description='A decimal number, as Shopify sends it: "199.00"')
    compare_at_price: _Text = None
    sku: _Text = None
    inventory_quantity: int | str | None = Field(None, description="None: stock not tracked")
    inventory_policy: InventoryPolicy | None = None
    image_src: str | None = Field(None, description="The `src` of one of the product's images")


class ImageIn(BaseModel):
    model_config = ConfigDict(extra="allow")
    src: str
    alt: str | None = None


class ProductFields(BaseModel):
    model_config = ConfigDict(extra="allow")
    title: str
    body_html: str | None = None
    vendor: str | None = None
    product_type: str | None = None
    tags: str | list[str] | None = Field(
        None, description='Comma-separated as Shopify sends them ("a, b"), or a list'
    )
    status: ProductStatus | None = None
    handle: str | None = Field(None, description="Made from the title when absent")
    url: str | None = None
    published: bool | None = None
    external_id: str | int | None = Field(
        None, description="The product's id in the shop's system; Shopify's `id` when absent"
    )
    currency: str | None = Field(None, description="ISO 4217; USD when absent")
    options: list[OptionIn] | None = None
    variants: list[VariantIn] | None = None
    images: list[ImageIn] | None = None
    collections: list[str] | None = Field(
        None, description="Names of the collections holding it; absent: unchanged"
    )


class ProductEnvelope(BaseModel):
    """Shopify's REST form: ``{"product": {...}}``."""

    product: ProductFields


class OptionOut(BaseModel):
    name: str
    position: int
    values: list[str]

    @classmethod
    def of(cls, option: ProductOption) -> OptionOut:
        return cls(name=option.name, position=option.position, values=list(option.values))


class VariantOut(BaseModel):
    id: uuid.UUID
    position: int
    title: str
    option1: str | None
    option2: str | None
    option3: str | None
    price: str
    compare_at_price: str | None
    currency: str
    sku: str
    inventory_quantity: int | None
    inventory_policy: InventoryPolicy
    available: bool
    image_id: uuid.UUID | None

    @classmethod
    def of(cls, variant: Variant) -> VariantOut:
        return cls(
            id=variant.id,
            position=variant.position,
            title=variant.title,
            option1=variant.option1,
            option2=variant.option2,
            option3=variant.option3,
            price=f"{variant.price:.2f}",
            compare_at_price=None
            if variant.compare_at_price is None
            else f"{variant.compare_at_price:.2f}",
            currency=variant.currency,
            sku=variant.sku,
            inventory_quantity=variant.inventory_quantity,
            inventory_policy=variant.inventory_policy,
            available=variant.available,
            image_id=variant.image_id,
        )


class ImageOut(BaseModel):
    id: uuid.UUID
    src: str
    alt: str
    position: int

    @classmethod
    def of(cls, image: ProductImage) -> ImageOut:
        return cls(id=image.id, src=image.src, alt=image.alt, position=image.position)


class CollectionOut(BaseModel):
    id: uuid.UUID
    title: str
    handle: str
    external_id: str | None

    @classmethod
    def of(cls, collection: CatalogCollection) -> CollectionOut:
        return cls(
            id=collection.id,
            title=collection.title,
            handle=collection.handle,
            external_id=collection.external_id,
        )


class ProductOut(BaseModel):
    id: uuid.UUID
    external_id: str | None
    title: str
    body_html: str
    vendor: str
    product_type: str
    tags: list[str]
    status: ProductStatus
    handle: str
    url: str | None
    published: bool
    currency: str
    options: list[OptionOut]
    variants: list[VariantOut]
    images: list[ImageOut]
    collections: list[str] = Field(description="The handles of the collections holding it")
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, product: Product) -> ProductOut:
        return cls(
            id=product.id,
            external_id=product.external_id,
            title=product.title,
            body_html=product.body_html,
            vendor=product.vendor,
            product_type=product.product_type,
            tags=list(product.tags),
            status=product.status,
            handle=product.handle,
            url=product.url,
            published=product.published,
            currency=product.currency,
            options=[OptionOut.of(o) for o in product.options],
            variants=[VariantOut.of(v) for v in product.variants],
            images=[ImageOut.of(i) for i in product.images],
            collections=[c.handle for c in product.collections],
            created_at=product.created_at,
            updated_at=product.updated_at,
        )


class ProductPage(BaseModel):
    products: list[ProductOut]
    next_cursor: str | None


class ImportRowError(BaseModel):
    row: int = Field(description="The row as a spreadsheet numbers it; the header is row 1")
    field: str | None = Field(description="The column, when one is at fault")
    message: str


class ImportOut(BaseModel):
    created: int
    updated: int
    error_count: int
    errors: list[ImportRowError] = Field(description="The first 200 refused rows")
