"""Knowledge-base rules: collections, documents, Q&A pairs, and search.

Writes record the item and defer its indexing job (`knowledge.indexing`) in the same
transaction.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import structlog
from sqlalchemy import update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine import pagination
from cybergine.accounts.principal import Principal
from cybergine.analytics import embedding_usage
from cybergine.assistants.models import Assistant
from cybergine.db.ids import uuid7
from cybergine.db.tenancy import TenantScope
from cybergine.errors import Conflict, InvalidInput, NotFound
from cybergine.job_names import JobName
from cybergine.knowledge import extract
from cybergine.knowledge import search as retrieval
from cybergine.knowledge.embeddings import EmbeddingProvider
from cybergine.knowledge.models import (
    Chunk,
    Collection,
    Item,
    ItemFile,
    ItemKind,
    ItemStatus,
)
from cybergine.privacy import audit
from cybergine.queue import defer

log = structlog.get_logger(__name__)

DEFAULT_COLLECTION = "default"
MAX_TEXT_CHARS = 2_000_000
MAX_ALTERNATIVES = 50
MAX_METADATA_BYTES = 16_384


# --- Validation ---------------------------------------------------------------------


def clean_collection_name(name: str | None) -> str:
    name = " ".join((name or DEFAULT_COLLECTION).split())
    if not name or len(name) > 100:
        raise InvalidInput("A collection name has 1 to 100 characters.", field="collection")
    return name


def clean_external_id(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > 200:
        raise InvalidInput("An external_id has 1 to 200 characters.", field="external_id")
    return value


def clean_metadata(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    metadata = dict(metadata or {})
    if len(json.dumps(metadata, default=str)) > MAX_METADATA_BYTES:
        raise InvalidInput(
            f"Metadata is limited to {MAX_METADATA_BYTES} bytes of JSON.", field="metadata"
        )
    return metadata


def _clean_text(value: str, *, field_name: str, required: bool = True) -> str:
    value = value.replace("\x00", "").strip()
    if required and not value:
        raise InvalidInput(f"{field_name.capitalize()} cannot be empty.", field=field_name)
    if len(value) > MAX_TEXT_CHARS:
        raise InvalidInput(
            f"{field_name.capitalize()} is limited to {MAX_TEXT_CHARS} characters.",
            field=field_name,
        )
    return value


# --- Collections --------------------------------------------------------------------


async def collection_by_name(
    scope: TenantScope, name: str | None, *, create: bool
) -> Collection | None:
    name = clean_collection_name(name)
    found = (
        await scope.session.execute(scope.select(Collection).where(Collection.name == name))
    ).scalar_one_or_none()
    if found is not None or not create:
        return found
    # Two writers may create the same collection at once: insert-or-ignore, then read.
    await scope.session.execute(
        insert(Collection)
        .values(id=uuid7(), organisation_id=scope.organisation_id, name=name)
        .on_conflict_do_nothing(index_elements=["organisation_id", "name"])
    )
    return (
        await scope.session.execute(scope.select(Collection).where(Collection.name == name))
    ).scalar_one()


async def list_collections(scope: TenantScope) -> list[Collection]:
    result = await scope.session.execute(scope.select(Collection).order_by(Collection.name))
    return list(result.scalars())


async def create_collection(scope: TenantScope, name: str) -> Collection:
    """A collection made ahead of its first item (items also create theirs on first use)."""
    if await collection_by_name(scope, name, create=False) is not None:
        raise Conflict("A collection of that name already exists.", field="collection")
    created = await collection_by_name(scope, name, create=True)
    assert created is not None
    return created


async def delete_collection(
    scope: TenantScope, caller: Principal, collection_id: uuid.UUID
) -> None:
    """Removes the collection, its items, files, chunks and vectors in this transaction."""
    # Locks in the indexing job's order (``index_item``: the item, then the index
    # statistics, then the collection's key for the new chunks): the items first, in id
    # order, and only then the collection. Locking the collection first and waiting for
    # an item a job holds was a deadlock (the job waits for the collection's key).
    await scope.session.execute(
        scope.select(Item)
        .where(Item.collection_id == collection_id)
        .order_by(Item.id)
        .with_for_update()
        .with_only_columns(Item.id)
    )
    collection = await scope.get(Collection, collection_id, for_update=True, what="collection")
    await scope.delete(collection)
    await audit.record(
        scope.session,
        action="knowledge.collection.deleted",
        actor=caller.actor,
        organisation_id=scope.organisation_id,
        target_type="kb_collection",
        target_id=str(collection_id),
        details={"name": collection.name},
    )


# --- Items --------------------------------------------------------------------------


async def _assert_external_id_free(
    scope: TenantScope, external_id: str | None, *, except_id: uuid.UUID | None = None
) -> None:
    if external_id is None:
        return
    statement = scope.select(Item).where(Item.external_id == external_id)
    if except_id is not None:
        statement = statement.where(Item.id != except_id)
    if (await scope.session.execute(statement)).first() is not None:
        raise Conflict(
            f"An item with external_id {external_id!r} already exists.", field="external_id"
        )


async def _schedule_indexing(session: AsyncSession, item: Item) -> None:
    await defer(session, JobName.INDEX_KNOWLEDGE_ITEM, item_id=str(item.id), version=item.version)


async def _add_item(
    scope: TenantScope,
    item: Item,
    *,
    external_id: str | None,
    collection: str | None,
    metadata: Mapping[str, Any] | None,
    original: ItemFile | None = None,
) -> Item:
    """What every new item goes through: a free external_id, its collection (created on
    first use), clean metadata, the original file if any, and its indexing job."""
    item.external_id = clean_external_id(external_id)
    await _assert_external_id_free(scope, item.external_id)
    found = await collection_by_name(scope, collection, create=True)
    assert found is not None
    item.collection_id = found.id
    item.metadata_ = clean_metadata(metadata)
    scope.add(item)
    await scope.session.flush()
    if original is not None:
        original.item_id = item.id
        scope.add(original)
        await scope.session.flush()
    await _schedule_indexing(scope.session, item)
    return item


async def create_document(
    scope: TenantScope,
    *,
    title: str,
    body: str,
    external_id: str | None = None,
    collection: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Item:
    item = Item(
        kind=ItemKind.DOCUMENT,
        title=_clean_text(title, field_name="title", required=False)[:500],
        body=_clean_text(body, field_name="text"),
        content_type=extract.DocumentType.TEXT.value,
    )
    return await _add_item(
        scope, item, external_id=external_id, collection=collection, metadata=metadata
    )


async def upload_document(
    scope: TenantScope,
    *,
    data: bytes,
    filename: str,
    declared_type: str | None,
    extracted: extract.ExtractedDocument,
    title: str | None = None,
    external_id: str | None = None,
    collection: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Item:
    """A file whose text was extracted before this transaction began (the extraction
    process takes seconds; a connection must not wait in a transaction for it), so a bad
    file got a clear answer at once. The original is kept for re-processing and download.

    Its title, which customers see as the source of an answer, is the one the merchant
    gave, else the file's name: never the file's own metadata (a PDF's Info title is as
    often "about:blank" or "Microsoft Word - Document1" as anything meant for readers)."""
    item = Item(
        kind=ItemKind.DOCUMENT,
        title=(title or filename)[:500],
        body=as_markdown(extracted.sections),
        content_type=extracted.type.value,
        page_count=extracted.page_count,
    )
    original = ItemFile(
        filename=filename[:255] or "upload",
        declared_type=(declared_type or None) and declared_type[:100],
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        data=data,
    )
    return await _add_item(
        scope,
        item,
        external_id=external_id,
        collection=collection,
        metadata=metadata,
        original=original,
    )


async def create_qa(
    scope: TenantScope,
    *,
    question: str,
    answer: str,
    alternatives: Sequence[str] = (),
    external_id: str | None = None,
    collection: str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Item:
    question = _clean_text(question, field_name="question")
    item = Item(
        kind=ItemKind.QA,
        title=question[:500],
        question=question,
        body=_clean_text(answer, field_name="answer"),
        alternatives=_clean_alternatives(alternatives),
    )
    return await _add_item(
        scope, item, external_id=external_id, collection=collection, metadata=metadata
    )


def _clean_alternatives(alternatives: Sequence[str]) -> list[str]:
    cleaned: list[str] = []
    for alternative in alternatives:
        value = alternative.replace("\x00", "").strip()
        if value and value not in cleaned:
            cleaned.append(value[:2000])
    if len(cleaned) > MAX_ALTERNATIVES:
        raise InvalidInput(
            f"A Q&A pair has at most {MAX_ALTERNATIVES} alternative phrasings.",
            field="alternatives",
        )
    return cleaned


@dataclass
class ItemChanges:
    title: str | None = None
    body: str | None = None
    question: str | None = None
    alternatives: Sequence[str] | None = None
    external_id: str | None = None
    collection: str | None = None
    metadata: Mapping[str, Any] | None = None
    fields_set: set[str] = field(default_factory=set)


async def update_item(
    scope: TenantScope, item_id: uuid.UUID, kind: ItemKind, changes: ItemChanges
) -> Item:
    item = await _get(scope, item_id, kind, for_update=True)
    reindex = False
    if "external_id" in changes.fields_set:
        external_id = clean_external_id(changes.external_id)
        await _assert_external_id_free(scope, external_id, except_id=item.id)
        item.external_id = external_id
    if changes.title is not None:
        item.title = _clean_text(changes.title, field_name="title", required=False)[:500]
        reindex = True
    if changes.body is not None:
        item.body = _clean_text(
            changes.body, field_name="answer" if kind is ItemKind.QA else "text"
        )
        reindex = True
    if changes.question is not None:
        item.question = _clean_text(changes.question, field_name="question")
        item.title = item.question[:500]
        reindex = True
    if changes.alternatives is not None:
        item.alternatives = _clean_alternatives(changes.alternatives)
        reindex = True
    if changes.collection is not None:
        found = await collection_by_name(scope, changes.collection, create=True)
        assert found is not None
        item.collection_id = found.id
        await scope.session.execute(
            update(Chunk).where(Chunk.item_id == item.id).values(collection_id=found.id)
        )
    if "metadata" in changes.fields_set:
        item.metadata_ = clean_metadata(changes.metadata)
    if reindex:
        await mark_for_reindex(scope.session, item)
    await scope.session.flush()
    return item


async def mark_for_reindex(session: AsyncSession, item: Item) -> None:
    item.version += 1
    item.status = ItemStatus.PENDING
    item.error = None
    await session.flush()
    await _schedule_indexing(session, item)


async def reprocess(
    scope: TenantScope, item_id: uuid.UUID, extracted: extract.ExtractedDocument | None
) -> Item:
    """Re-index a document, with the text extracted again from its original file (by the
    caller, outside this transaction: see `original_file`) if it was uploaded as one."""
    item = await _get(scope, item_id, ItemKind.DOCUMENT, for_update=True)
    if extracted is not None:
        item.body = as_markdown(extracted.sections)
        item.content_type = extracted.type.value
        item.page_count = extracted.page_count
    await mark_for_reindex(scope.session, item)
    return item


async def delete_item(scope: TenantScope, item_id: uuid.UUID, kind: ItemKind) -> None:
    """Its chunks and vectors go in the same transaction: nothing deleted is retrievable."""
    item = await _get(scope, item_id, kind, for_update=True)
    await scope.delete(item)
    await scope.session.flush()


async def get_item(scope: TenantScope, item_id: uuid.UUID, kind: ItemKind) -> Item:
    return await _get(scope, item_id, kind)


async def original_file(scope: TenantScope, item_id: uuid.UUID) -> ItemFile | None:
    """The file a document was uploaded as; None for a document given as text."""
    item = await _get(scope, item_id, ItemKind.DOCUMENT)
    return (
        await scope.session.execute(scope.select(ItemFile).where(ItemFile.item_id == item.id))
    ).scalar_one_or_none()


async def get_file(scope: TenantScope, item_id: uuid.UUID) -> ItemFile:
    stored = await original_file(scope, item_id)
    if stored is None:
        raise NotFound("This document was not uploaded as a file.")
    return stored


async def _get(
    scope: TenantScope, item_id: uuid.UUID, kind: ItemKind, *, for_update: bool = False
) -> Item:
    what = "document" if kind is ItemKind.DOCUMENT else "Q&A pair"
    item = await scope.get(Item, item_id, for_update=for_update, what=what)
    if item.kind is not kind:
        raise NotFound(f"No such {what}.")
    return item


@dataclass(frozen=True)
class Page:
    items: list[Item]
    collections: dict[uuid.UUID, str]
    next_cursor: str | None


async def list_items(
    scope: TenantScope,
    kind: ItemKind,
    *,
    external_id: str | None = None,
    collection: str | None = None,
    status: ItemStatus | None = None,
    limit: int = 50,
    cursor: str | None = None,
) -> Page:
    statement = scope.select(Item).where(Item.kind == kind)
    if external_id is not None:
        statement = statement.where(Item.external_id == external_id)
    if collection is not None:
        found = await collection_by_name(scope, collection, create=False)
        if found is None:
            return Page(items=[], collections={}, next_cursor=None)
        statement = statement.where(Item.collection_id == found.id)
    if status is not None:
        statement = statement.where(Item.status == status)
    if cursor:
        (after,) = pagination.decode(cursor, pagination.UUID)
        statement = statement.where(Item.id < after)
    rows = list(
        (await scope.session.execute(statement.order_by(Item.id.desc()).limit(limit + 1))).scalars()
    )
    names = {c.id: c.name for c in await list_collections(scope)}
    next_cursor = pagination.encode(rows[limit - 1].id) if len(rows) > limit else None
    return Page(items=rows[:limit], collections=names, next_cursor=next_cursor)


# --- Stored text ----------------------------------------------------------------------


def as_markdown(sections: Sequence[extract.Section]) -> str:
    """An extracted document as Markdown: headings become ``#`` lines, so the stored text
    stays readable and indexing recovers the heading structure from it."""
    lines: list[str] = []
    current: tuple[str, ...] = ()
    for section in sections:
        if section.headings != current:
            shared = 0
            while (
                shared < min(len(current), len(section.headings))
                and current[shared] == section.headings[shared]
            ):
                shared += 1
            for depth in range(shared, len(section.headings)):
                lines.append(f"{'#' * min(depth + 1, 6)} {section.headings[depth]}")
            current = section.headings
        if section.text.strip():
            lines.append(section.text.strip())
    return "\n\n".join(lines)


# --- Search -------------------------------------------------------------------------


async def search_knowledge(
    scope: TenantScope,
    *,
    query: str,
    k: int = 5,
    collections: Sequence[str] | None = None,
    assistant_id: uuid.UUID | None = None,
    metadata: Mapping[str, Any] | None = None,
    provider: EmbeddingProvider | None,
    embedded_query: str | None = None,
    answering: uuid.UUID | None = None,
) -> list[retrieval.Hit]:
    """Hybrid search of the caller's knowledge base (lexical only without a provider), in
    the named ``collections`` or in those the assistant ``assistant_id`` answers from
    (all of them when it names none), as its replies search. ``embedded_query``: what the
    provider is given to embed instead of ``query`` (a customer's words with their
    personal data redacted, since the provider can be an external endpoint); the
    lexical search, on this database, reads ``query``. The query's embedding is counted
    in the analytics' embedding usage, under the assistant ``answering`` (whose answer
    the search is for) or ``assistant_id``."""
    query = query.strip()
    if not query:
        raise InvalidInput("Say what to search for.", field="query")
    if assistant_id is not None:
        if collections:
            raise InvalidInput(
                "Search a collection or an assistant's knowledge, not both.", field="assistant_id"
            )
        assistant = await scope.get(Assistant, assistant_id, what="assistant")
        collections = list(assistant.knowledge_collections) or None
    collection_ids: list[uuid.UUID] | None = None
    if collections:
        found = [await collection_by_name(scope, name, create=False) for name in collections]
        collection_ids = [c.id for c in found if c is not None]
        if not collection_ids:
            return []
    to_embed = (embedded_query or "").strip() or query
    vector = (
        (
            await embedding_usage.embed(
                scope.session,
                provider,
                [to_embed],
                kind="query",
                organisation_id=scope.organisation_id,
                purpose=embedding_usage.Purpose.RETRIEVAL,
                assistant_id=answering or assistant_id,
            )
        )[0]
        if provider
        else None
    )
    return await retrieval.search(
        scope.session,
        organisation_id=scope.organisation_id,
        query=query,
        query_vector=vector,
        embedding_model=provider.name if provider else None,
        k=k,
        filters=retrieval.Filters(collection_ids=collection_ids, metadata=metadata),
    )
