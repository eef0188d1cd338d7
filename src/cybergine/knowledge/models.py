"""The knowledge base: collections of documents and Q&A pairs, their original files, and
the chunks retrieval searches (lexical: a tsvector; dense: a pgvector embedding).

Documents and Q&A pairs share one table (``kb_items``): they are listed, filtered,
deleted and erased the same way, and a Q&A pair is just an item whose chunks are its
question and alternative phrasings and whose answer is what retrieval returns.
Chunks are derived data: deleting an item or a collection removes its chunks in the
same transaction (foreign keys with ON DELETE CASCADE).
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import (
    ARRAY,
    BigInteger,
    Computed,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, TSVECTOR
from sqlalchemy.orm import Mapped, mapped_column

from cybergine.db.base import Base, TenantMixin, value_enum
from cybergine.privacy.retention import Retention

# all-MiniLM-L6-v2's width. An OpenAI-compatible model is asked for vectors of this size
# (text-embedding-3 models shorten theirs on request).
EMBEDDING_DIMENSIONS = 384

# English stemming and stop words for the lexical index. Text in other languages is still
# indexed and matched word for word (the English stemmer leaves most foreign words alone).
TEXT_SEARCH_CONFIG = "english"


class ItemKind(enum.StrEnum):
    DOCUMENT = "document"
    QA = "qa"


class ItemStatus(enum.StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    READY = "ready"
    FAILED = "failed"


class ChunkKind(enum.StrEnum):
    PASSAGE = "passage"  # a piece of a document
    QUESTION = "question"  # a Q&A pair's question or one of its alternatives


class Collection(TenantMixin, Base):
    __tablename__ = "kb_collections"
    __retention__ = Retention.KNOWLEDGE
    __table_args__ = (UniqueConstraint("organisation_id", "name"),)

    name: Mapped[str] = mapped_column(String(100))


class Item(TenantMixin, Base):
    __tablename__ = "kb_items"
    __retention__ = Retention.KNOWLEDGE
    __table_args__ = (
        UniqueConstraint("organisation_id", "external_id"),
        Index(None, "organisation_id", "collection_id", "status"),
    )

    collection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("kb_collections.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[ItemKind] = mapped_column(value_enum(ItemKind, "kb_item_kind"))
    external_id: Mapped[str | None] = mapped_column(String(200), default=None)
    title: Mapped[str] = mapped_column(String(500), default="")
    # Documents: the text given, or extracted from the uploaded file. Q&A: the answer.
    body: Mapped[str] = mapped_column(Text, default="")
    question: Mapped[str | None] = mapped_column(Text, default=None)
    alternatives: Mapped[list[str]] = mapped_column(
        ARRAY(Text), default=list, server_default=text("'{}'")
    )
    content_type: Mapped[str | None] = mapped_column(String(20), default=None)
    page_count: Mapped[int | None] = mapped_column(Integer, default=None)
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, default=dict, server_default=text("'{}'::jsonb")
    )
    status: Mapped[ItemStatus] = mapped_column(
        value_enum(ItemStatus, "kb_item_status"), default=ItemStatus.PENDING
    )
    error: Mapped[str | None] = mapped_column(String(500), default=None)
    # Bumped on every edit; an indexing job carries the version it was deferred for and
    # does nothing when the item has moved on (a newer job will index the newer text).
    version: Mapped[int] = mapped_column(Integer, default=1)
    indexed_at: Mapped[datetime | None] = mapped_column(default=None)


class ItemFile(TenantMixin, Base):
    """The original upload, kept for re-processing and download."""

    __tablename__ = "kb_files"
    __retention__ = Retention.KNOWLEDGE

    item_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("kb_items.id", ondelete="CASCADE"), unique=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    declared_type: Mapped[str | None] = mapped_column(String(100), default=None)
    size_bytes: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)


class Chunk(TenantMixin, Base):
    __tablename__ = "kb_chunks"
    __retention__ = Retention.KNOWLEDGE
    __table_args__ = (
        Index(None, "tsv", postgresql_using="gin"),
        Index(
            None,
            "embedding",
            postgresql_using="hnsw",
            postgresql_with={"m": 16, "ef_construction": 64},
            postgresql_ops={"embedding": "vector_cosine_ops"},
        ),
        Index(None, "organisation_id", "collection_id"),
    )

    item_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("kb_items.id", ondelete="CASCADE"), index=True
    )
    # Copied from the item so filters need no join; kept in step by the indexer.
    collection_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("kb_collections.id", ondelete="CASCADE")
    )
    kind: Mapped[ChunkKind] = mapped_column(value_enum(ChunkKind, "kb_chunk_kind"))
    ordinal: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)
    tsv: Mapped[Any] = mapped_column(
        TSVECTOR, Computed(f"to_tsvector('{TEXT_SEARCH_CONFIG}', text)", persisted=True)
    )
    embedding: Mapped[Any | None] = mapped_column(Vector(EMBEDDING_DIMENSIONS), default=None)
    embedding_model: Mapped[str | None] = mapped_column(String(100), default=None)


class IndexStats(TenantMixin, Base):
    """Corpus statistics BM25 needs on every query (chunk count, total length), kept
    exact by statement triggers on ``kb_chunks`` (migration 0004): reading them from the
    chunks would mean reading every chunk of the organisation per query."""

    __tablename__ = "kb_index_stats"
    __retention__ = Retention.KNOWLEDGE
    __table_args__ = (UniqueConstraint("organisation_id"),)

    chunk_count: Mapped[int] = mapped_column(BigInteger, default=0)
    total_length: Mapped[int] = mapped_column(BigInteger, default=0)


class Lexeme(TenantMixin, Base):
    """How many of an organisation's chunks contain a lexeme (BM25's document frequency),
    kept exact by the same triggers as ``IndexStats``. Counting it from the chunks at
    query time costs a scan per query term."""

    __tablename__ = "kb_lexicon"
    __retention__ = Retention.KNOWLEDGE
    __table_args__ = (UniqueConstraint("organisation_id", "lexeme"),)

    lexeme: Mapped[str] = mapped_column(Text)
    df: Mapped[int] = mapped_column(BigInteger, default=0)
