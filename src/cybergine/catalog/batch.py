"""The catalogue written many products at a time, for a shop's sync: the same matching
and the same rows as ``service.upsert_product`` (``service.child_rows``), in one
statement per table for a whole batch, and the deletions a shop's system asks for.

Takes a ``TenantScope`` and plain values; never commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from cybergine.catalog import search_index
from cybergine.catalog.models import (
    MAX_TITLE_LENGTH,
    CatalogCollection,
    CollectionMembership,
    Product,
    ProductImage,
    ProductOption,
    Variant,
)
from cybergine.catalog.service import PRODUCT_FIELDS, child_rows, insert_children
from cybergine.catalog.shape import ProductDraft, handle_for
from cybergine.db.ids import uuid7
from cybergine.db.tenancy import TenantScope
from cybergine.errors import InvalidInput
from cybergine.privacy import audit


@dataclass(frozen=True)
class BatchWritten:
    created: int
    updated: int
    # Products of the shop's system whose handle another of its products now has.
    displaced: int
    # The id of each draft's product, in the drafts' order.
    ids: list[uuid.UUID]


async def write_products(
    scope: TenantScope, actor: audit.Actor, drafts: Sequence[ProductDraft]
) -> BatchWritten:
    """Many products at once (a shop's sync), each matched as ``upsert_product`` matches
    it: by external_id, else by a handle no other product of the shop's system holds.
    A product of the shop's system (another external_id) that holds a draft's handle is
    gone from the shop (handles are unique there) and is deleted. Set-based: one
    statement per table for the whole batch, one audit entry for the batch; every row
    written gets ``updated_at`` now, which a complete sync compares to find the products
    the shop no longer has (``delete_products_not_written_since``)."""
    by_external: dict[str, ProductDraft] = {}
    plain: list[ProductDraft] = []
    for draft in drafts:
        if draft.external_id is None:
            plain.append(draft)
        else:
            by_external[draft.external_id] = draft  # the last of a repeated id wins
    batch = [*by_external.values(), *plain]
    if not batch:
        return BatchWritten(0, 0, 0, [])
    session = scope.session
    existing = (
        await session.execute(
            scope.select(Product)
            .with_only_columns(Product.id, Product.external_id, Product.handle)
            .where(
                or_(
                    Product.external_id.in_(list(by_external)),
                    Product.handle.in_([d.handle for d in batch]),
                )
            )
        )
    ).all()
    id_of_external = {row.external_id: row.id for row in existing if row.external_id}
    holder_of_handle = {row.handle: row for row in existing}
    ids: list[uuid.UUID] = []
    displaced: set[uuid.UUID] = set()
    created = 0
    for draft in batch:
        product_id = id_of_external.get(draft.external_id) if draft.external_id else None
        holder = holder_of_handle.get(draft.handle)
        if (
            product_id is None
            and holder is not None
            and holder.external_id
            in (
                None,
                draft.external_id,
            )
        ):
            product_id = holder.id
        elif holder is not None and holder.id != product_id:
            displaced.add(holder.id)
        if product_id is None:
            product_id = uuid7()
            created += 1
        ids.append(product_id)
    displaced -= set(ids)
    if displaced:
        await session.execute(delete(Product).where(Product.id.in_(displaced)))
    rows = [
        {
            "id": product_id,
            "organisation_id": scope.organisation_id,
            **{name: getattr(draft, name) for name in PRODUCT_FIELDS},
        }
        for product_id, draft in zip(ids, batch, strict=True)
    ]
    statement = pg_insert(Product).values(rows)
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=[Product.id],
            set_={
                **{name: statement.excluded[name] for name in PRODUCT_FIELDS},
                "updated_at": func.now(),
            },
        )
    )
    for model in (Variant, ProductImage, ProductOption):
        await session.execute(delete(model).where(model.product_id.in_(ids)))
    await insert_children(
        session,
        [child_rows(scope.organisation_id, i, d) for i, d in zip(ids, batch, strict=True)],
    )
    await _write_memberships(scope, ids, batch)
    await search_index.products_changed(session, scope.organisation_id, ids)
    await audit.record(
        session,
        action="catalog.products_written",
        actor=actor,
        organisation_id=scope.organisation_id,
        target_type="catalog",
        target_id=str(scope.organisation_id),
        details={
            "created": created,
            "updated": len(batch) - created,
            "displaced": len(displaced),
        },
    )
    return BatchWritten(created, len(batch) - created, len(displaced), ids)


async def _write_memberships(
    scope: TenantScope, ids: Sequence[uuid.UUID], drafts: Sequence[ProductDraft]
) -> None:
    named = [
        (i, d.collections) for i, d in zip(ids, drafts, strict=True) if d.collections is not None
    ]
    if not named:
        return
    session = scope.session
    await session.execute(
        delete(CollectionMembership).where(
            CollectionMembership.product_id.in_([i for i, _ in named])
        )
    )
    handles = {handle_for(name): name for _, names in named for name in names or []}
    handles.pop("", None)
    if not handles:
        return
    await session.execute(
        pg_insert(CatalogCollection)
        .values(
            [
                {
                    "id": uuid7(),
                    "organisation_id": scope.organisation_id,
                    "title": title,
                    "handle": handle,
                }
                for handle, title in handles.items()
            ]
        )
        .on_conflict_do_nothing(index_elements=["organisation_id", "handle"])
    )
    found = await session.execute(
        scope.select(CatalogCollection)
        .with_only_columns(CatalogCollection.handle, CatalogCollection.id)
        .where(CatalogCollection.handle.in_(list(handles)))
    )
    collection_of = {row.handle: row.id for row in found}
    memberships = {
        (collection_of[handle_for(name)], product_id)
        for product_id, names in named
        for name in names or []
        if handle_for(name) in collection_of
    }
    if memberships:
        await session.execute(
            insert(CollectionMembership),
            [
                {"organisation_id": scope.organisation_id, "collection_id": c, "product_id": p}
                for c, p in memberships
            ],
        )


async def write_collection(
    scope: TenantScope, *, external_id: str, handle: str, title: str
) -> CatalogCollection:
    """The collection the shop's system knows by ``external_id``, made or renamed; a
    collection of ours with its handle and no external id becomes it."""
    handle = handle_for(handle or title)
    if not handle:
        raise InvalidInput("The collection needs a handle of letters or digits.", field="handle")
    title = title.strip()[:MAX_TITLE_LENGTH] or handle
    found = await scope.session.scalar(
        scope.select(CatalogCollection).where(CatalogCollection.external_id == external_id)
    )
    if found is None:
        found = await scope.session.scalar(
            scope.select(CatalogCollection).where(CatalogCollection.handle == handle)
        )
        if found is not None and found.external_id not in (None, external_id):
            await scope.delete(found)
            await scope.session.flush()
            found = None
    renamed = False
    if found is None:
        found = scope.add(CatalogCollection(id=uuid7(), handle=handle, title=title))
    else:
        renamed = (found.handle, found.title) != (handle, title)
        clash = await scope.session.scalar(
            scope.select(CatalogCollection).where(
                CatalogCollection.handle == handle, CatalogCollection.id != found.id
            )
        )
        if clash is not None:
            await scope.delete(clash)
            await scope.session.flush()
        found.handle, found.title = handle, title
    found.external_id = external_id
    await scope.session.flush()
    if renamed:
        # Its products are searchable by the collection's name: their rows follow.
        members = await scope.session.scalars(
            select(CollectionMembership.product_id).where(
                CollectionMembership.collection_id == found.id
            )
        )
        await search_index.products_changed(scope.session, scope.organisation_id, list(members))
    return found


async def delete_collection_by_external_id(scope: TenantScope, external_id: str) -> bool:
    deleted = await scope.session.execute(
        delete(CatalogCollection)
        .where(CatalogCollection.organisation_id == scope.organisation_id)
        .where(CatalogCollection.external_id == external_id)
        .returning(CatalogCollection.id)
    )
    return deleted.first() is not None


async def delete_products_by_external_id(
    scope: TenantScope, actor: audit.Actor, external_ids: Sequence[str]
) -> int:
    """The products the shop's system deleted; their rows go with them (cascade)."""
    if not external_ids:
        return 0
    deleted = await scope.session.execute(
        delete(Product)
        .where(Product.organisation_id == scope.organisation_id)
        .where(Product.external_id.in_(list(external_ids)))
        .returning(Product.id)
    )
    count = len(deleted.all())
    if count:
        await audit.record(
            scope.session,
            action="catalog.products_deleted",
            actor=actor,
            organisation_id=scope.organisation_id,
            target_type="catalog",
            target_id=str(scope.organisation_id),
            details={"deleted": count},
        )
    return count


async def touch_products(scope: TenantScope, external_ids: Sequence[str]) -> None:
    """Marks these products of the shop's system as seen by a sync that did not rewrite
    them, so ``delete_products_not_written_since`` keeps them."""
    if external_ids:
        await scope.session.execute(
            update(Product)
            .where(Product.organisation_id == scope.organisation_id)
            .where(Product.external_id.in_(list(external_ids)))
            .values(updated_at=func.now())
        )


async def delete_products_not_written_since(
    scope: TenantScope, actor: audit.Actor, since: datetime
) -> int:
    """After a complete sync from the shop's system: its products (those with an
    external_id) that the sync did not write are no longer in the shop."""
    stale = await scope.session.scalars(
        scope.select(Product)
        .with_only_columns(Product.external_id)
        .where(Product.external_id.is_not(None), Product.updated_at < since)
    )
    return await delete_products_by_external_id(scope, actor, [e for e in stale if e])
