"""What the embedding calls to a billed endpoint used, per hour and per UTC day
(aggregated analytics, kept 2 years): the organisation, the assistant when the call was
for one of its answers (none for the organisation's knowledge and catalogue), the
provider and the model the server reported, and what the call was for (``purpose``).
Counts only: no customer, no text. ``created_at`` is the row's hour (day), so the
retention purge ages a row by the time it measures. Written by
``embedding_usage.record``; no rebuild recomputes it (there are no raw rows to
recompute it from), so ``analytics rebuild`` leaves it alone.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cybergine.db.base import Base, TenantMixin
from cybergine.privacy.retention import Retention


class Purpose(enum.StrEnum):
    """What an embedding call was for."""

    RETRIEVAL = "retrieval"  # a question searched in the knowledge base
    KNOWLEDGE = "knowledge"  # knowledge items indexed (ingest, bulk import)
    PRODUCT_SEARCH = "product_search"  # a question searched in the catalogue
    PRODUCTS = "products"  # products indexed (catalogue sync)
    KNOWLEDGE_GAPS = "knowledge_gaps"  # unanswered questions grouped by meaning


def _key(table: str, grain: str) -> tuple[UniqueConstraint, Index]:
    # NULLS NOT DISTINCT: usage for no assistant has a key too.
    return (
        UniqueConstraint(
            "organisation_id",
            grain,
            "assistant_id",
            "provider",
            "model",
            "purpose",
            name=f"uq_{table}_key",
            postgresql_nulls_not_distinct=True,
        ),
        Index(None, "organisation_id", grain),
    )


class _Usage(TenantMixin):
    # No foreign key: a deleted assistant's usage stays counted under its id.
    assistant_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    provider: Mapped[str] = mapped_column(String(100))
    model: Mapped[str] = mapped_column(String(100))
    purpose: Mapped[str] = mapped_column(String(32))
    requests: Mapped[int] = mapped_column(BigInteger, default=0)
    inputs: Mapped[int] = mapped_column(BigInteger, default=0)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)


class HourlyEmbeddingUsage(_Usage, Base):
    __tablename__ = "analytics_hourly_embeddings"
    __retention__ = Retention.ANALYTICS
    __table_args__ = _key("analytics_hourly_embeddings", "hour")

    hour: Mapped[datetime]


class DailyEmbeddingUsage(_Usage, Base):
    """The same per UTC day (``day``: its start), written by the same statement as the
    hour's row: what a long period reads for the whole days inside it."""

    __tablename__ = "analytics_daily_embeddings"
    __retention__ = Retention.ANALYTICS
    __table_args__ = _key("analytics_daily_embeddings", "day")

    day: Mapped[datetime]
