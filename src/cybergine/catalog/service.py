"""The catalogue's rules: products written from a checked ``ProductDraft`` (``shape``),
read with their options, variants, images and collections, listed in pages.

Takes a ``TenantScope`` and plain values; never commits. A product's options, variants
and images are replaced as a whole when it is written (as a Shopify export states the
whole product); its changes are audited by id and field names, never their text.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace

from sqlalchemy import Select, delete, insert, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from cybergine import pagination
from cybergine.accounts.principal import Principal
from cybergine.catalog import search_index
from cybergine.catalog.models import (
    CatalogCollection,
    CollectionMembership,
    Product,
    ProductImage,
    ProductOption,
    ProductStatus,
    Variant,
)
from cybergine.catalog.shape import (
    ImageDraft,
    OptionDraft,
    ProductDraft,
    VariantDraft,
    handle_for,
)
from cybergine.db.ids import uuid7
from cybergine.db.tenancy import TenantScope
from cybergine.errors import Conflict, InvalidInput, NotFound
from cybergine.privacy import audit

PAGE_SIZE = 50
MAX_PAGE_SIZE = 250
MAX_QUERY_LENGTH = 200
# The product's own columns a draft sets (its children are written apart).
PRODUCT_FIELDS = (
    "title",
    "body_html",
    "vendor",
    "product_type",
    "tags",
    "status",
    "handle",
    "url",
    "published",
    "external_id",
    "currency",
)


@dataclass(frozen=True)
class Page:
    products: list[Product]
    next_cursor: str | None


def _loaded(scope: TenantScope) -> Select[Product]:
    return (
        scope.select(Product)
        .options(
            selectinload(Product.options),
            selectinload(Product.variants),
            selectinload(Product.images),
            selectinload(Product.collections),
        )
        .execution_options(populate_existing=True)
    )


async def get_product(scope: TenantScope, product_id: uuid.UUID) -> Product:
    """404 for another organisation's id."""
    product = await scope.session.scalar(_loaded(scope).where(Product.id == product_id))
    if product is None:
        raise NotFound("No such product.")
    return product


async def find_by_external_id(scope: TenantScope, external_id: str) -> Product | None:
    return await scope.session.scalar(_loaded(scope).where(Product.external_id == external_id))


async def find_by_handle(scope: TenantScope, handle: str) -> Product | None:
    return await scope.session.scalar(_loaded(scope).where(Product.handle == handle))


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


async def list_products(
    scope: TenantScope,
    *,
    q: str | None = None,
    status: ProductStatus | None = None,
    collection: str | None = None,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
    oldest_first: bool = False,
) -> Page:
    """Newest first (oldest first for exports, so a file lists products in the order
    importing it creates them); ``q`` matches title, vendor, type, handle or a variant's SKU;
    ``collection`` is a collection's handle."""
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput(f"`limit` must be between 1 and {MAX_PAGE_SIZE}.", field="limit")
    order = Product.id.asc() if oldest_first else Product.id.desc()
    statement = _loaded(scope).order_by(order).limit(limit + 1)
    if cursor:
        (after,) = pagination.decode(cursor, pagination.UUID)
        statement = statement.where(Product.id > after if oldest_first else Product.id < after)
    if status is not None:
        statement = statement.where(Product.status == status)
    if q and q.strip():
        if len(q) > MAX_QUERY_LENGTH:
            raise InvalidInput(f"`q` is limited to {MAX_QUERY_LENGTH} characters.", field="q")
        pattern = _like(q.strip())
        by_sku = (
            select(Variant.product_id)
            .where(Variant.organisation_id == scope.organisation_id)
            .where(Variant.sku.ilike(pattern))
        )
        statement = statement.where(
            or_(
                Product.title.ilike(pattern),
                Product.vendor.ilike(pattern),
                Product.product_type.ilike(pattern),
                Product.handle.ilike(pattern),
                Product.id.in_(by_sku),
            )
        )
    if collection:
        members = (
            select(CollectionMembership.product_id)
            .join(CatalogCollection, CatalogCollection.id == CollectionMembership.collection_id)
            .where(
                CatalogCollection.organisation_id == scope.organisation_id,
                CatalogCollection.handle == collection,
            )
        )
        statement = statement.where(Product.id.in_(members))
    products = list(await scope.session.scalars(statement))
    more = len(products) > limit
    return Page(
        products=products[:limit],
        next_cursor=pagination.encode(products[limit - 1].id) if more else None,
    )


async def list_collections(scope: TenantScope) -> list[CatalogCollection]:
    return list(
        await scope.session.scalars(
            scope.select(CatalogCollection).order_by(CatalogCollection.handle)
        )
    )


async def _collection_ids(scope: TenantScope, handles: Sequence[str]) -> list[uuid.UUID]:
    """The collections with these handles, made (titled by the name given) when new."""
    ids: list[uuid.UUID] = []
    for name in handles:
        handle = handle_for(name)
        if not handle:
            raise InvalidInput(
                f"“{name[:50]}” is not a usable collection name.", field="collections"
            )
        found = await scope.session.scalar(
            scope.select(CatalogCollection).where(CatalogCollection.handle == handle)
        )
        if found is None:
            found = scope.add(CatalogCollection(id=uuid7(), title=name, handle=handle))
            await scope.session.flush()
        if found.id not in ids:
            ids.append(found.id)
    return ids


async def _assert_free(
    scope: TenantScope, draft: ProductDraft, except_id: uuid.UUID | None
) -> None:
    for column, value, what in (
        (Product.handle, draft.handle, "handle"),
        (Product.external_id, draft.external_id, "external_id"),
    ):
        if value is None:
            continue
        statement = scope.select(Product).with_only_columns(Product.id).where(column == value)
        if except_id is not None:
            statement = statement.where(Product.id != except_id)
        if await scope.session.scalar(statement) is not None:
            raise Conflict(f"Another product has this {what}.", field=what)


@dataclass
class ChildRows:
    """The option, image and variant rows a draft's product is written as (one rule for
    the single write and the batch write)."""

    options: list[dict[str, object]]
    images: list[dict[str, object]]
    variants: list[dict[str, object]]


def child_rows(organisation_id: uuid.UUID, product_id: uuid.UUID, draft: ProductDraft) -> ChildRows:
    common = {"organisation_id": organisation_id, "product_id": product_id}
    options: list[dict[str, object]] = [
        {
            **common,
            "id": uuid7(),
            "name": option.name,
            "position": position,
            "values": option.values,
        }
        for position, option in enumerate(draft.options, start=1)
    ]
    images: list[dict[str, object]] = []
    image_ids: dict[str, uuid.UUID] = {}
    for position, image in enumerate(draft.images, start=1):
        image_id = uuid7()
        images.append(
            {**common, "id": image_id, "src": image.src, "alt": image.alt, "position": position}
        )
        image_ids.setdefault(image.src, image_id)
    variants: list[dict[str, object]] = []
    for position, variant in enumerate(draft.variants, start=1):
        if variant.image_src is not None and variant.image_src not in image_ids:
            raise InvalidInput(
                f"`variants[{position - 1}].image_src` is not one of the product's images.",
                field=f"variants[{position - 1}].image_src",
            )
        variants.append(
            {
                **common,
                "id": uuid7(),
                "position": position,
                "title": variant.title,
                "option1": variant.option1,
                "option2": variant.option2,
                "option3": variant.option3,
                "price": variant.price,
                "compare_at_price": variant.compare_at_price,
                "currency": draft.currency,
                "sku": variant.sku,
                "inventory_quantity": variant.inventory_quantity,
                "inventory_policy": variant.inventory_policy,
                "image_id": image_ids.get(variant.image_src) if variant.image_src else None,
            }
        )
    return ChildRows(options, images, variants)


async def insert_children(session: AsyncSession, rows: Sequence[ChildRows]) -> None:
    for model, name in (
        (ProductOption, "options"),
        (ProductImage, "images"),
        (Variant, "variants"),
    ):
        values = [row for child in rows for row in getattr(child, name)]
        if values:
            await session.execute(insert(model), values)


async def _write_children(scope: TenantScope, product: Product, draft: ProductDraft) -> None:
    session = scope.session
    for model in (Variant, ProductImage, ProductOption):
        await session.execute(delete(model).where(model.product_id == product.id))
    await insert_children(session, [child_rows(scope.organisation_id, product.id, draft)])
    if draft.collections is not None:
        await session.execute(
            delete(CollectionMembership).where(CollectionMembership.product_id == product.id)
        )
        for collection_id in await _collection_ids(scope, draft.collections):
            scope.add(CollectionMembership(collection_id=collection_id, product_id=product.id))
    await session.flush()
    # Searchable by its words when this commits; its vector follows (catalog.search_index).
    await search_index.products_changed(session, scope.organisation_id, [product.id])


def _changed_fields(product: Product, draft: ProductDraft) -> list[str]:
    return [name for name in PRODUCT_FIELDS if getattr(product, name) != getattr(draft, name)]


async def _audit(
    scope: TenantScope, caller: Principal, action: str, product_id: uuid.UUID, **details: object
) -> None:
    await audit.record(
        scope.session,
        action=action,
        actor=caller.actor,
        organisation_id=scope.organisation_id,
        target_type="product",
        target_id=str(product_id),
        details=details,
    )


async def create_product(scope: TenantScope, caller: Principal, draft: ProductDraft) -> Product:
    await _assert_free(scope, draft, except_id=None)
    product = scope.add(
        Product(id=uuid7(), **{name: getattr(draft, name) for name in PRODUCT_FIELDS})
    )
    await scope.session.flush()
    await _write_children(scope, product, draft)
    await _audit(scope, caller, "catalog.product_created", product.id, variants=len(draft.variants))
    return await get_product(scope, product.id)


async def update_product(
    scope: TenantScope, caller: Principal, product_id: uuid.UUID, draft: ProductDraft
) -> Product:
    """The product becomes the draft: its options, variants and images are replaced;
    its collections too when the draft names them."""
    product = await scope.get(Product, product_id, for_update=True, what="product")
    await _assert_free(scope, draft, except_id=product.id)
    changed = _changed_fields(product, draft)
    for name in PRODUCT_FIELDS:
        setattr(product, name, getattr(draft, name))
    await scope.session.flush()
    await _write_children(scope, product, draft)
    await _audit(
        scope,
        caller,
        "catalog.product_updated",
        product.id,
        fields=changed,
        variants=len(draft.variants),
    )
    return await get_product(scope, product.id)


async def upsert_product(
    scope: TenantScope, caller: Principal, draft: ProductDraft
) -> tuple[Product, bool]:
    """Updates the product with the draft's external_id, else the one with its handle
    (unless that one stands for another product of the shop's system), or creates it;
    True when created. A draft with no external_id keeps the product's."""
    existing = None
    if draft.external_id is not None:
        existing = await find_by_external_id(scope, draft.external_id)
    if existing is None:
        by_handle = await find_by_handle(scope, draft.handle)
        if by_handle is not None and by_handle.external_id in (None, draft.external_id):
            existing = by_handle
        elif by_handle is not None and draft.external_id is None:
            existing = by_handle
            draft = replace(draft, external_id=by_handle.external_id)
    if existing is None:
        return await create_product(scope, caller, draft), True
    return await update_product(scope, caller, existing.id, draft), False


async def delete_product(scope: TenantScope, caller: Principal, product_id: uuid.UUID) -> None:
    product = await scope.get(Product, product_id, for_update=True, what="product")
    await scope.delete(product)
    await scope.session.flush()
    await _audit(scope, caller, "catalog.product_deleted", product_id)


def draft_of(product: Product) -> ProductDraft:
    """The draft a stored product would be written from (exports, round trips)."""
    sources = {image.id: image.src for image in product.images}
    return ProductDraft(
        **{name: getattr(product, name) for name in PRODUCT_FIELDS},
        options=[OptionDraft(o.name, list(o.values)) for o in product.options],
        variants=[
            VariantDraft(
                title=v.title,
                option1=v.option1,
                option2=v.option2,
                option3=v.option3,
                price=v.price,
                compare_at_price=v.compare_at_price,
                sku=v.sku,
                inventory_quantity=v.inventory_quantity,
                inventory_policy=v.inventory_policy,
                image_src=sources.get(v.image_id) if v.image_id else None,
            )
            for v in product.variants
        ],
        images=[ImageDraft(i.src, i.alt) for i in product.images],
        collections=[c.title for c in product.collections],
    )
