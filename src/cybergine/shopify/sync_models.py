"""What the sync from a Shopify shop keeps: each run (for progress, errors and resuming
after a crash) and the version of each object of the shop last applied (so a webhook
that arrives late never overwrites newer data).

Both are the shop's business data, go with the shop (cascade from ``shopify_shops``) and
hold no one's personal data.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from cybergine.db.base import Base, TenantMixin, value_enum
from cybergine.privacy.retention import Retention

SYNC_ERROR_LENGTH = 1000
# The first errors of a run are kept with their line; the rest are only counted.
KEPT_ERRORS = 20
# The runs kept per shop (older ones are pruned when a new one starts).
KEPT_RUNS = 20


class SyncKind(enum.StrEnum):
    FULL = "full"  # the catalogue by bulk operation, then the content
    CONTENT = "content"  # pages, articles and policies alone


class SyncStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"  # the bulk operation is being made by Shopify
    APPLYING = "applying"  # its file is being read into the catalogue
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def finished(self) -> bool:
        return self in (SyncStatus.COMPLETED, SyncStatus.FAILED)


class ShopifySyncRun(TenantMixin, Base):
    __tablename__ = "shopify_sync_runs"
    __retention__ = Retention.CATALOGUE
    __table_args__ = (Index(None, "shop_id", "created_at"),)

    shop_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shopify_shops.id", ondelete="CASCADE"))
    kind: Mapped[SyncKind] = mapped_column(value_enum(SyncKind, "shopify_sync_kind"))
    status: Mapped[SyncStatus] = mapped_column(
        value_enum(SyncStatus, "shopify_sync_status"), default=SyncStatus.QUEUED
    )
    bulk_operation_id: Mapped[str | None] = mapped_column(String(255), default=None)
    # The shop's currency (``shop.currencyCode``) its prices are in, as the run found it.
    currency: Mapped[str | None] = mapped_column(String(3), default=None)
    # Lines of the bulk operation's file whose products are in the catalogue (committed):
    # a run that starts again reads the file again and skips them.
    lines_applied: Mapped[int] = mapped_column(Integer, default=0)
    object_count: Mapped[int | None] = mapped_column(Integer, default=None)
    products_written: Mapped[int] = mapped_column(Integer, default=0)
    products_failed: Mapped[int] = mapped_column(Integer, default=0)
    products_deleted: Mapped[int] = mapped_column(Integer, default=0)
    documents_written: Mapped[int] = mapped_column(Integer, default=0)
    documents_removed: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Why the run failed, when it did.
    error: Mapped[str | None] = mapped_column(String(SYNC_ERROR_LENGTH), default=None)
    # The first products refused (line, external id, message), while the run goes on.
    errors: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, default=list, server_default=text("'[]'::jsonb")
    )
    started_at: Mapped[datetime | None] = mapped_column(default=None)
    finished_at: Mapped[datetime | None] = mapped_column(default=None)


class SourceKind(enum.StrEnum):
    PRODUCT = "product"
    COLLECTION = "collection"


class ShopifySourceVersion(TenantMixin, Base):
    """The ``updated_at`` of a shop's product or collection as last applied (a deletion:
    when Shopify triggered it). An older version arriving later is not applied."""

    __tablename__ = "shopify_source_versions"
    __retention__ = Retention.CATALOGUE
    __table_args__ = (UniqueConstraint("shop_id", "kind", "external_id"),)

    shop_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("shopify_shops.id", ondelete="CASCADE"))
    kind: Mapped[SourceKind] = mapped_column(value_enum(SourceKind, "shopify_source_kind"))
    external_id: Mapped[str] = mapped_column(String(255))
    source_updated_at: Mapped[datetime] = mapped_column()
    deleted: Mapped[bool] = mapped_column(Boolean, default=False)
