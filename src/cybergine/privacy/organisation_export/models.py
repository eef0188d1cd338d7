"""The row of one whole-organisation export: its state, the file's facts, its link."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Enum, ForeignKey, Index, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from cybergine.db.base import Base, TenantMixin
from cybergine.privacy.retention import Retention


class ExportStatus(enum.StrEnum):
    QUEUED = "queued"
    BUILDING = "building"
    READY = "ready"  # the file waits for its one download
    DOWNLOADED = "downloaded"  # taken: the file is gone
    EXPIRED = "expired"  # not taken in time: the file is gone
    FAILED = "failed"


# While one of these, an export is being prepared: one at a time per organisation.
IN_PROGRESS = (ExportStatus.QUEUED, ExportStatus.BUILDING)


class OrganisationExport(TenantMixin, Base):
    __tablename__ = "organisation_exports"
    # The row says what was prepared and when; the file itself leaves the disk when it
    # is downloaded or expires (``service.expire``, a periodic job).
    __retention__ = Retention.OPERATIONAL
    __table_args__ = (
        Index(
            "uq_organisation_exports_one_in_progress",
            "organisation_id",
            unique=True,
            postgresql_where=text("status IN ('queued', 'building')"),
        ),
    )

    status: Mapped[ExportStatus] = mapped_column(
        Enum(
            ExportStatus,
            name="organisation_export_status",
            values_callable=lambda e: [m.value for m in e],
        ),
        default=ExportStatus.QUEUED,
    )
    requested_by_user_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    # The ZIP's name in the exports directory of the data directory, once built.
    file_name: Mapped[str | None] = mapped_column(String(100), default=None)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger, default=None)
    sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    # Rows written per table: what the owner is told before downloading.
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    ready_at: Mapped[datetime | None] = mapped_column(default=None)
    # Until when the file waits for its download.
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    downloaded_at: Mapped[datetime | None] = mapped_column(default=None)
    # The current download link's token, hashed (``accounts.tokens.token_hash``); a link
    # works once, until ``link_expires_at``.
    link_token_hash: Mapped[str | None] = mapped_column(String(64), unique=True, default=None)
    link_expires_at: Mapped[datetime | None] = mapped_column(default=None)
    error: Mapped[str | None] = mapped_column(String(200), default=None)
