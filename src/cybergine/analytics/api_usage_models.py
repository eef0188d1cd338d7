"""The API usage log (policy §3e: API call logs; §11: usage logs, kept 12 months).

One row per request to ``/api/v1`` made with an API key: the organisation, the key, the
method, the route's template (``/api/v1/conversations/{conversation_id}``, never the
path itself: no ids, no query string), the status and the latency. No address, no
body, no header. ``created_at`` is when the request arrived (the retention purge ages
a row by it). Written in batches after the responses are sent (``api_usage``). A
partition a month (``db.partitions``): a month's partition is dropped once the whole
month is past the retention.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Float, Index, SmallInteger, String, func
from sqlalchemy.orm import Mapped, mapped_column

from cybergine.db.base import Base, TenantMixin
from cybergine.privacy.retention import Retention

# Longest method and route template kept (a longer template is cut: none is near it).
METHOD_LENGTH = 10
ROUTE_LENGTH = 300


class ApiCall(TenantMixin, Base):
    __tablename__ = "api_usage_log"
    __retention__ = Retention.USAGE_LOG
    __table_args__ = (
        # The report reads one organisation's period; the purge, the oldest rows of all.
        Index(None, "organisation_id", "created_at"),
        Index("ix_api_usage_log_created_at_brin", "created_at", postgresql_using="brin"),
        {"postgresql_partition_by": "RANGE (created_at)"},
    )

    # The partition key is part of every unique key of a partitioned table.
    created_at: Mapped[datetime] = mapped_column(
        primary_key=True, server_default=func.now(), sort_order=100
    )

    # No foreign key: a deleted key's calls stay counted under its id.
    api_key_id: Mapped[uuid.UUID]
    method: Mapped[str] = mapped_column(String(METHOD_LENGTH))
    route: Mapped[str] = mapped_column(String(ROUTE_LENGTH))
    status: Mapped[int] = mapped_column(SmallInteger)
    latency_ms: Mapped[float] = mapped_column(Float)
