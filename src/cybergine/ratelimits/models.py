"""The counters of the shared rate limits: hits per key and fixed window."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cybergine.db.base import Base, TenantMixin
from cybergine.db.retention import Retention


class RateCounter(TenantMixin, Base):
    """Hits of one key for one limit (``purpose``) in one window. The key is a keyed hash
    of a customer's id or of an address: enough to count, useless to anyone reading the
    table. Pruned two hours after its window by a job."""

    __tablename__ = "rate_counters"
    __retention__ = Retention.OPERATIONAL
    __table_args__ = (
        UniqueConstraint("organisation_id", "purpose", "key_hash", "window_start"),
        Index(None, "window_start"),  # the prune's range scan
    )

    purpose: Mapped[str] = mapped_column(String(40))
    key_hash: Mapped[str] = mapped_column(String(64))
    window_start: Mapped[datetime]
    hits: Mapped[int]
