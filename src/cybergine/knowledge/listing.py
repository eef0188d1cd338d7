"""What the dashboard shows of the knowledge base: rows of documents and Q&A pairs, and
counts, read without the items' text (a document's body runs to two million characters,
and an organisation may hold thousands of them).

Every query starts from the caller's scope; lists are pages in id order (newest first),
one more row read than shown to know whether another page follows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, NamedTuple, TypeVar

from sqlalchemy import func

from cybergine import pagination
from cybergine.db.tenancy import TenantScope
from cybergine.errors import NotFound
from cybergine.knowledge.models import Chunk, Collection, Item, ItemFile, ItemKind, ItemStatus

PAGE_SIZE = 25
PREVIEW_CHARS = 240  # of a Q&A pair's answer, in a list


class DocumentRow(NamedTuple):
    id: uuid.UUID
    title: str
    collection_id: uuid.UUID
    status: ItemStatus
    error: str | None
    content_type: str | None
    page_count: int | None
    filename: str | None
    size_bytes: int | None
    created_at: datetime
    updated_at: datetime
    indexed_at: datetime | None


class QaRow(NamedTuple):
    id: uuid.UUID
    question: str
    alternatives: list[str]
    answer_preview: str
    collection_id: uuid.UUID
    status: ItemStatus
    error: str | None
    updated_at: datetime


class CollectionRow(NamedTuple):
    id: uuid.UUID
    name: str
    documents: int
    qa_pairs: int


RowT = TypeVar("RowT")


@dataclass(frozen=True)
class Listing(Generic[RowT]):
    rows: list[RowT]
    next_cursor: str | None
    # Whether any item of the kind (in the filter) is still queued or indexing: the page
    # keeps asking for fresh statuses only while this is so.
    unsettled: bool


def parse_cursor(cursor: str | None) -> uuid.UUID | None:
    """The id a page of newest-first items continues below (``pagination`` cursor)."""
    if not cursor:
        return None
    (after,) = pagination.decode(cursor, pagination.UUID)
    return after


async def collections(scope: TenantScope) -> list[CollectionRow]:
    """Every collection with how many documents and Q&A pairs it holds (one grouped
    count over an index on the organisation and collection)."""
    counted = (
        scope.select(Item)
        .with_only_columns(
            Item.collection_id,
            func.count().filter(Item.kind == ItemKind.DOCUMENT).label("documents"),
            func.count().filter(Item.kind == ItemKind.QA).label("qa_pairs"),
        )
        .group_by(Item.collection_id)
    ).subquery()
    statement = (
        scope.select(Collection)
        .with_only_columns(
            Collection.id,
            Collection.name,
            func.coalesce(counted.c.documents, 0),
            func.coalesce(counted.c.qa_pairs, 0),
        )
        .outerjoin(counted, counted.c.collection_id == Collection.id)
        .order_by(Collection.name)
    )
    return [CollectionRow._make(row) for row in (await scope.session.execute(statement)).all()]


async def _unsettled(scope: TenantScope, kind: ItemKind, collection_id: uuid.UUID | None) -> bool:
    statement = (
        scope.select(Item)
        .with_only_columns(Item.id)
        .where(Item.kind == kind, Item.status.in_([ItemStatus.PENDING, ItemStatus.PROCESSING]))
        .limit(1)
    )
    if collection_id is not None:
        statement = statement.where(Item.collection_id == collection_id)
    return (await scope.session.execute(statement)).first() is not None


# A document as its lists show it (the columns of DocumentRow, in its order).
_DOCUMENT_COLUMNS = (
    Item.id,
    Item.title,
    Item.collection_id,
    Item.status,
    Item.error,
    Item.content_type,
    Item.page_count,
    ItemFile.filename,
    ItemFile.size_bytes,
    Item.created_at,
    Item.updated_at,
    Item.indexed_at,
)


async def documents(
    scope: TenantScope,
    *,
    collection_id: uuid.UUID | None = None,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
) -> Listing[DocumentRow]:
    after = parse_cursor(cursor)
    statement = (
        scope.select(Item)
        .with_only_columns(*_DOCUMENT_COLUMNS)
        .outerjoin(ItemFile, ItemFile.item_id == Item.id)
        .where(Item.kind == ItemKind.DOCUMENT)
        .order_by(Item.id.desc())
        .limit(limit + 1)
    )
    if collection_id is not None:
        statement = statement.where(Item.collection_id == collection_id)
    if after is not None:
        statement = statement.where(Item.id < after)
    rows = [DocumentRow._make(row) for row in (await scope.session.execute(statement)).all()]
    return Listing(
        rows=rows[:limit],
        next_cursor=pagination.encode(rows[limit - 1].id) if len(rows) > limit else None,
        unsettled=await _unsettled(scope, ItemKind.DOCUMENT, collection_id),
    )


async def qa_pairs(
    scope: TenantScope,
    *,
    collection_id: uuid.UUID | None = None,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
) -> Listing[QaRow]:
    after = parse_cursor(cursor)
    statement = (
        scope.select(Item)
        .with_only_columns(
            Item.id,
            func.coalesce(Item.question, Item.title),
            Item.alternatives,
            func.left(Item.body, PREVIEW_CHARS),
            Item.collection_id,
            Item.status,
            Item.error,
            Item.updated_at,
        )
        .where(Item.kind == ItemKind.QA)
        .order_by(Item.id.desc())
        .limit(limit + 1)
    )
    if collection_id is not None:
        statement = statement.where(Item.collection_id == collection_id)
    if after is not None:
        statement = statement.where(Item.id < after)
    rows = [QaRow._make(row) for row in (await scope.session.execute(statement)).all()]
    return Listing(
        rows=rows[:limit],
        next_cursor=pagination.encode(rows[limit - 1].id) if len(rows) > limit else None,
        unsettled=await _unsettled(scope, ItemKind.QA, collection_id),
    )


class DocumentDetail(NamedTuple):
    row: DocumentRow
    collection: str
    external_id: str | None
    chunks: int


async def document_detail(scope: TenantScope, document_id: uuid.UUID) -> DocumentDetail:
    """One document as its page shows it, without its text (404 for another
    organisation's id, or a Q&A pair's)."""
    found = (
        await scope.session.execute(
            scope.select(Item)
            .with_only_columns(*_DOCUMENT_COLUMNS, Collection.name, Item.external_id)
            .join(Collection, Collection.id == Item.collection_id)
            .outerjoin(ItemFile, ItemFile.item_id == Item.id)
            .where(Item.id == document_id, Item.kind == ItemKind.DOCUMENT)
        )
    ).first()
    if found is None:
        raise NotFound("No such document.")
    chunks = await scope.session.scalar(
        scope.select(Chunk).with_only_columns(func.count()).where(Chunk.item_id == document_id)
    )
    values: tuple[Any, ...] = tuple(found)
    return DocumentDetail(
        row=DocumentRow._make(values[:12]),
        collection=values[12],
        external_id=values[13],
        chunks=chunks or 0,
    )
