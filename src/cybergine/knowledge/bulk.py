"""Bulk import of documents (`cybergine kb import`): large catalogues of pages without a
job per document.

Each batch is chunked and embedded outside any transaction, then written in one:
items are upserted by ``external_id`` (an import can be run again to update), their old
chunks replaced, the new ones inserted in multi-row statements. A bad line is reported
with its number and skipped; the rest goes in.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Table, delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.analytics import embedding_usage
from cybergine.db.engine import Database, raw_connection
from cybergine.db.ids import uuid7
from cybergine.db.tenancy import TenantScope
from cybergine.errors import CybergineError
from cybergine.knowledge import indexing, service
from cybergine.knowledge.embeddings import EmbeddingProvider
from cybergine.knowledge.embeddings.base import metering
from cybergine.knowledge.models import Chunk, Item, ItemKind, ItemStatus

DEFAULT_BATCH = 200
ITEMS: Table = Item.__table__  # type: ignore[assignment]
CHUNKS: Table = Chunk.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class Record:
    line: int
    external_id: str
    title: str
    text: str
    metadata: dict[str, Any]


@dataclass
class ImportReport:
    imported: int = 0
    chunks: int = 0
    errors: list[str] = field(default_factory=list)


def read_jsonl(lines: Iterable[str], report: ImportReport) -> Iterator[Record]:
    """Records of a JSON Lines file; malformed lines go to ``report.errors``."""
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            external_id = service.clean_external_id(str(data["external_id"]))
            text = str(data.get("text") or "").replace("\x00", "").strip()
            if not text:
                raise ValueError("`text` is empty")
            if external_id is None:
                raise ValueError("`external_id` is empty")
            metadata = data.get("metadata") or {}
            if not isinstance(metadata, dict):
                raise ValueError("`metadata` is not an object")
            yield Record(
                line=number,
                external_id=external_id,
                title=str(data.get("title") or "").strip()[:500],
                text=text,
                metadata=service.clean_metadata(metadata),
            )
        except KeyError:
            report.errors.append(f"line {number}: `external_id` is missing")
        except (ValueError, CybergineError) as exc:
            detail = exc.detail if isinstance(exc, CybergineError) else str(exc)
            report.errors.append(f"line {number}: {detail[:200]}")


def batched(records: Iterable[Record], size: int) -> Iterator[list[Record]]:
    batch: list[Record] = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


async def import_records(
    database: Database,
    *,
    organisation_id: uuid.UUID,
    records: Iterable[Record],
    collection: str | None,
    provider: EmbeddingProvider | None,
    report: ImportReport,
    batch_size: int = DEFAULT_BATCH,
    on_batch: Callable[[int], None] | None = None,
) -> ImportReport:
    async with database.transaction() as session:
        found = await service.collection_by_name(
            TenantScope(session, organisation_id), collection, create=True
        )
        assert found is not None
        collection_id = found.id

    async def prepare(batch: list[Record]) -> _Prepared:
        # Later lines win over earlier ones with the same external_id.
        unique = list({record.external_id: record for record in batch}.values())
        prepared = await asyncio.to_thread(
            lambda: [
                indexing.prepare_chunks(
                    Item(kind=ItemKind.DOCUMENT, title=r.title, body=r.text, alternatives=[]),
                    count_tokens=provider.count_tokens if provider else None,
                )
                for r in unique
            ]
        )
        texts = [chunk.text for chunks in prepared for chunk in chunks]
        with metering() as usage:
            vectors = await provider.embed(texts, kind="document") if provider and texts else None
        await embedding_usage.record_apart(
            database, organisation_id, usage, purpose=embedding_usage.Purpose.KNOWLEDGE
        )
        return _Prepared(len(batch), unique, prepared, vectors)

    # Pipelined: the next batch is chunked (and embedded) while this one is written.
    batches = iter(batched(records, batch_size))
    first = next(batches, None)
    upcoming = asyncio.create_task(prepare(first)) if first is not None else None
    while upcoming is not None:
        current = await upcoming
        following = next(batches, None)
        upcoming = asyncio.create_task(prepare(following)) if following is not None else None
        await _write(database, organisation_id, collection_id, current, provider, report)
        if on_batch is not None:
            on_batch(current.size)
    return report


@dataclass(frozen=True)
class _Prepared:
    size: int
    unique: list[Record]
    prepared: list[list[indexing.PreparedChunk]]
    vectors: list[list[float]] | None


async def _write(
    database: Database,
    organisation_id: uuid.UUID,
    collection_id: uuid.UUID,
    batch: _Prepared,
    provider: EmbeddingProvider | None,
    report: ImportReport,
) -> None:
    unique, prepared, vectors = batch.unique, batch.prepared, batch.vectors
    now = datetime.now(UTC)
    async with database.transaction() as session:
        rows = [
            {
                "id": uuid7(),
                "organisation_id": organisation_id,
                "collection_id": collection_id,
                "kind": ItemKind.DOCUMENT,
                "external_id": r.external_id,
                "title": r.title[:500],
                "body": r.text,
                "content_type": "text",
                "metadata": r.metadata,
                "status": ItemStatus.READY,
                "version": 1,
                "indexed_at": now,
            }
            for r in unique
        ]
        statement = pg_insert(ITEMS)
        statement = statement.on_conflict_do_update(
            index_elements=["organisation_id", "external_id"],
            set_={
                "collection_id": statement.excluded.collection_id,
                "title": statement.excluded.title,
                "body": statement.excluded.body,
                "metadata": statement.excluded.metadata,
                "status": statement.excluded.status,
                "error": None,
                "version": ITEMS.c.version + 1,
                "indexed_at": statement.excluded.indexed_at,
                "updated_at": now,
            },
            where=ITEMS.c.kind == ItemKind.DOCUMENT,
        )
        await session.execute(statement, rows)
        ids = dict(
            (
                await session.execute(
                    select(Item.external_id, Item.id).where(
                        Item.organisation_id == organisation_id,
                        Item.external_id.in_([r.external_id for r in unique]),
                        Item.kind == ItemKind.DOCUMENT,
                    )
                )
            ).all()
        )
        await session.execute(delete(Chunk).where(Chunk.item_id.in_(list(ids.values()))))
        chunk_rows = []
        position = 0
        for record, chunks in zip(unique, prepared, strict=True):
            item_id = ids.get(record.external_id)
            if item_id is None:  # the external_id belongs to a Q&A pair
                report.errors.append(
                    f"line {record.line}: external_id {record.external_id!r} is a Q&A pair"
                )
                position += len(chunks)
                continue
            for chunk in chunks:
                chunk_rows.append(
                    {
                        "id": uuid7(),
                        "organisation_id": organisation_id,
                        "item_id": item_id,
                        "collection_id": collection_id,
                        "kind": chunk.kind,
                        "ordinal": chunk.ordinal,
                        "text": chunk.text,
                        "embedding": vectors[position] if vectors is not None else None,
                        "embedding_model": provider.name
                        if vectors is not None and provider
                        else None,
                    }
                )
                position += 1
            report.imported += 1
        if chunk_rows:
            await _copy_chunks(session, chunk_rows)
        report.chunks += len(chunk_rows)


_CHUNK_COLUMNS = (
    "id",
    "organisation_id",
    "item_id",
    "collection_id",
    "kind",
    "ordinal",
    "text",
    "embedding",
    "embedding_model",
)


async def _copy_chunks(session: AsyncSession, rows: list[dict[str, Any]]) -> None:
    """COPY is several times faster than multi-row INSERT for thousands of chunks."""
    connection = await raw_connection(session)
    columns = ", ".join(_CHUNK_COLUMNS)
    statement = f"COPY kb_chunks ({columns}) FROM STDIN"
    async with connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            embedding = row["embedding"]
            await copy.write_row(
                (
                    row["id"],
                    row["organisation_id"],
                    row["item_id"],
                    row["collection_id"],
                    row["kind"].value,
                    row["ordinal"],
                    row["text"],
                    None if embedding is None else "[" + ",".join(map(repr, embedding)) + "]",
                    row["embedding_model"],
                )
            )
