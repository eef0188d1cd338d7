"""Indexing: an item's text turned into searchable chunks and vectors.

Three steps, so no transaction stays open while the text is parsed or the embedding model
works: read the item, compute chunks and vectors, then write them if the item has not
changed in the meantime (its ``version``).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import delete, update

from cybergine.analytics import embedding_usage
from cybergine.db.engine import Database
from cybergine.errors import InvalidInput
from cybergine.knowledge import chunking, extract
from cybergine.knowledge.embeddings import EmbeddingProvider
from cybergine.knowledge.embeddings.base import metering
from cybergine.knowledge.extraction_process import ExtractionProcesses
from cybergine.knowledge.models import Chunk, ChunkKind, Item, ItemKind, ItemStatus


def sections_of(
    body: str, *, title: str | None, parsed: list[extract.Section] | None = None
) -> list[extract.Section]:
    """The sections of a stored text (Markdown, HTML or plain), with the item's title at
    the top of every heading path: each chunk then says what it belongs to. ``parsed``:
    the text's sections, already read in an extraction process (see `index_item`)."""
    if parsed is None:
        try:
            # Sniffed, not declared: plain text skips the Markdown parser (a large share
            # of bulk-import time), while text with Markdown headings or HTML is parsed.
            parsed = extract.extract(body.encode("utf-8")).sections
        except (InvalidInput, extract.DocumentTooLarge):
            parsed = _unparsed(body)
    if not title:
        return parsed
    return [
        extract.Section(
            headings=section.headings
            if section.headings[:1] == (title,)
            else (title, *section.headings),
            text=section.text,
        )
        for section in parsed
    ]


def _unparsed(body: str) -> list[extract.Section]:
    # Text we accepted must stay indexable even if it does not parse as a document.
    return [extract.Section(headings=(), text=body)]


async def _parse_confined(extraction: ExtractionProcesses, body: str) -> list[extract.Section]:
    """A tenant's stored text parsed in an extraction process, as an upload is: up to
    MAX_TEXT_CHARS of Markdown or HTML built to be costly must not take the CPU, memory
    or interpreter lock of the process serving everyone. `ExtractionBusy` is raised (the
    job is tried again later)."""
    try:
        document = await extraction.extract(body.encode("utf-8"), filename=None, declared_type=None)
    except (InvalidInput, extract.DocumentTooLarge):
        return _unparsed(body)
    return document.sections


@dataclass(frozen=True)
class PreparedChunk:
    kind: ChunkKind
    ordinal: int
    text: str


def prepare_chunks(
    item: Item,
    *,
    count_tokens: Any,
    policy: chunking.ChunkingPolicy | None = None,
    parsed: list[extract.Section] | None = None,
) -> list[PreparedChunk]:
    """What gets indexed: a document's heading-aware chunks, each led by the document's
    title; a Q&A pair's question and each alternative as matchable chunks, and its answer
    as passages (so a question worded like the answer still finds it). ``parsed``: a
    document's sections if already read (else its text is parsed here)."""
    policy = policy or chunking.ChunkingPolicy()
    prepared: list[PreparedChunk] = []
    if item.kind is ItemKind.QA:
        for phrasing in [item.question or "", *item.alternatives]:
            if phrasing.strip():
                prepared.append(PreparedChunk(ChunkKind.QUESTION, len(prepared), phrasing))
        sections = [extract.Section(headings=(item.question or "",), text=item.body)]
    else:
        sections = sections_of(item.body, title=item.title or None, parsed=parsed)
    for piece in chunking.chunk_sections(sections, policy, count_tokens=count_tokens):
        prepared.append(PreparedChunk(ChunkKind.PASSAGE, len(prepared), piece.text))
    return prepared


async def index_item(
    database: Database,
    item_id: uuid.UUID,
    version: int,
    provider: EmbeddingProvider | None,
    extraction: ExtractionProcesses | None = None,
) -> bool:
    """Index one item; False when there was nothing to do (deleted, or superseded).
    With ``extraction``, a document's text is parsed in an extraction process."""
    async with database.transaction() as session:
        item = await session.get(Item, item_id, with_for_update=True)
        if item is None or item.version != version:
            return False
        item.status = ItemStatus.PROCESSING
        snapshot = _Snapshot.of(item)
        organisation_id = item.organisation_id

    try:
        parsed = None
        if extraction is not None and snapshot.kind is ItemKind.DOCUMENT:
            parsed = await _parse_confined(extraction, snapshot.body)
        # Counting up to MAX_TEXT_CHARS of text in tokens is CPU work too: off the loop.
        prepared = await asyncio.to_thread(
            prepare_chunks,
            snapshot.as_item(),
            count_tokens=provider.count_tokens if provider else None,
            parsed=parsed,
        )
        with metering() as usage:
            vectors = (
                await provider.embed([p.text for p in prepared], kind="document")
                if provider is not None and prepared
                else None
            )
    except Exception as exc:
        await _mark_failed(database, item_id, version, exc)
        raise
    await embedding_usage.record_apart(
        database, organisation_id, usage, purpose=embedding_usage.Purpose.KNOWLEDGE
    )

    async with database.transaction() as session:
        item = await session.get(Item, item_id, with_for_update=True)
        if item is None or item.version != version:
            return False
        await session.execute(delete(Chunk).where(Chunk.item_id == item_id))
        session.add_all(
            Chunk(
                organisation_id=item.organisation_id,
                item_id=item.id,
                collection_id=item.collection_id,
                kind=p.kind,
                ordinal=p.ordinal,
                text=p.text,
                embedding=vectors[n] if vectors is not None else None,
                embedding_model=provider.name if vectors is not None and provider else None,
            )
            for n, p in enumerate(prepared)
        )
        item.status = ItemStatus.READY
        item.error = None
        item.indexed_at = datetime.now(UTC)
    return True


async def _mark_failed(
    database: Database, item_id: uuid.UUID, version: int, error: Exception
) -> None:
    async with database.transaction() as session:
        await session.execute(
            update(Item)
            .where(Item.id == item_id, Item.version == version)
            .values(status=ItemStatus.FAILED, error=f"{type(error).__name__}: {error}"[:500])
        )


@dataclass(frozen=True)
class _Snapshot:
    """The fields indexing needs, read inside the first transaction."""

    kind: ItemKind
    title: str
    body: str
    question: str | None
    alternatives: tuple[str, ...]

    @classmethod
    def of(cls, item: Item) -> _Snapshot:
        return cls(item.kind, item.title, item.body, item.question, tuple(item.alternatives))

    def as_item(self) -> Item:
        return Item(
            kind=self.kind,
            title=self.title,
            body=self.body,
            question=self.question,
            alternatives=list(self.alternatives),
        )
