"""API shapes of the knowledge base."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from cybergine.knowledge.models import Item, ItemStatus


class DocumentIn(BaseModel):
    title: str = Field(default="", max_length=500)
    text: str = Field(min_length=1)
    external_id: str | None = Field(default=None, max_length=200)
    collection: str | None = Field(default=None, max_length=100)
    metadata: dict[str, Any] | None = None


class DocumentUpdate(BaseModel):
    title: str | None = Field(default=None, max_length=500)
    text: str | None = Field(default=None, min_length=1)
    external_id: str | None = Field(default=None, max_length=200)
    collection: str | None = Field(default=None, max_length=100)
    metadata: dict[str, Any] | None = None


class QaIn(BaseModel):
    question: str = Field(min_length=1, max_length=5000)
    answer: str = Field(min_length=1)
    alternatives: list[str] = Field(default_factory=list, max_length=50)
    external_id: str | None = Field(default=None, max_length=200)
    collection: str | None = Field(default=None, max_length=100)
    metadata: dict[str, Any] | None = None


class QaUpdate(BaseModel):
    question: str | None = Field(default=None, min_length=1, max_length=5000)
    answer: str | None = Field(default=None, min_length=1)
    alternatives: list[str] | None = Field(default=None, max_length=50)
    external_id: str | None = Field(default=None, max_length=200)
    collection: str | None = Field(default=None, max_length=100)
    metadata: dict[str, Any] | None = None


class FileInfo(BaseModel):
    filename: str
    size_bytes: int
    sha256: str


class DocumentOut(BaseModel):
    id: uuid.UUID
    external_id: str | None
    collection: str
    title: str
    text: str
    content_type: str | None
    page_count: int | None
    metadata: dict[str, Any]
    status: ItemStatus
    error: str | None
    indexed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, item: Item, collection: str) -> DocumentOut:
        return cls(
            id=item.id,
            external_id=item.external_id,
            collection=collection,
            title=item.title,
            text=item.body,
            content_type=item.content_type,
            page_count=item.page_count,
            metadata=item.metadata_,
            status=item.status,
            error=item.error,
            indexed_at=item.indexed_at,
            created_at=item.created_at,
            updated_at=item.updated_at,
        )


class QaOut(BaseModel):
    id: uuid.UUID
    external_id: str | None
    collection: str
    question: str
    answer: str
    alternatives: list[str]
    metadata: dict[str, Any]
    status: ItemStatus
    error: str | None
    indexed_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, item: Item, collection: str) -> QaOut:
        return cls(
            id=item.id,
            external_id=item.external_id,
            collection=collection,
            question=item.question or "",
            answer=item.body,
            alternatives=list(item.alternatives),
            metadata=item.metadata_,
            status=item.status,
            error=item.error,
            indexed_at=item.indexed_at,
            created_at=item.created_at,
            updated_at=item.updated_at,
        )


class DocumentPage(BaseModel):
    items: list[DocumentOut]
    next_cursor: str | None


class QaPage(BaseModel):
    items: list[QaOut]
    next_cursor: str | None


class CollectionOut(BaseModel):
    id: uuid.UUID
    name: str


class SearchIn(BaseModel):
    query: str = Field(min_length=1, max_length=2000)
    k: int = Field(default=5, ge=1, le=50)
    collection: str | None = Field(default=None, max_length=100)
    assistant_id: uuid.UUID | None = Field(
        default=None,
        description="Search what this assistant answers from (its collections), as its "
        "replies do; not together with `collection`",
    )
    metadata: dict[str, Any] | None = None
    explain: bool = False


class ComponentOut(BaseModel):
    rank: int | None = Field(description="Rank among the candidates by this signal alone")
    score: float = Field(description="Cosine similarity (dense), or the raw BM25 score (lexical)")
    contribution: float = Field(
        default=0.0,
        description="What this signal adds to the result's fused `score`; a result's "
        "contributions add up to its score",
    )


class ExplainOut(BaseModel):
    lexical: ComponentOut
    dense: ComponentOut | None = Field(
        description="None when dense search is off, or the item has no vector of the "
        "current embedding model yet"
    )
    grounded: bool = Field(
        default=False,
        description="Whether the result clears the grounding threshold: assistants "
        "answer only from results that do",
    )


class SearchResult(BaseModel):
    chunk_id: uuid.UUID
    document_id: uuid.UUID
    external_id: str | None
    title: str
    text: str
    score: float
    kind: Literal["document", "qa"]
    explain: ExplainOut | None = None


class WeightsOut(BaseModel):
    dense: float
    lexical: float


class GroundingOut(BaseModel):
    min_similarity: float = Field(description="For a result with a dense score")
    min_bm25: float = Field(description="For a result without one")


class SearchExplainOut(BaseModel):
    """How the results were ranked: ``score = weights.dense * dense.score +
    weights.lexical * lexical BM25 / best BM25`` (lexical alone, normalised, for a
    result without a dense score)."""

    dense_search: bool = Field(description="False when no embedding model is configured")
    weights: WeightsOut
    grounding: GroundingOut


class SearchOut(BaseModel):
    results: list[SearchResult]
    explain: SearchExplainOut | None = None


class CollectionIn(BaseModel):
    name: str = Field(min_length=1, max_length=100)


class ImportRowError(BaseModel):
    line: int
    message: str


class ImportOut(BaseModel):
    created: int
    updated: int
    error_count: int
    errors: list[ImportRowError] = Field(description="The first 200 refused rows, by line")
