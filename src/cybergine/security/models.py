"""What the security monitor counts and what it raised.

``security_signals`` holds counts that no audit entry gives (webhooks refused for a bad
signature, which anyone can send by the thousand), one row per organisation, kind,
subject and minute. ``security_alerts`` holds each alert raised, unique per window, so
a run of the monitor repeated (or two workers) raises it once.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime

from sqlalchemy import Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from cybergine.db.base import Base, TenantMixin
from cybergine.privacy.retention import Retention


class AlertKind(enum.StrEnum):
    FAILED_SIGN_INS = "failed_sign_ins"
    PERMISSION_DENIALS = "permission_denials"
    SIGNATURE_FAILURES = "signature_failures"
    EXPORTS_AND_ERASURES = "exports_and_erasures"


class SecuritySignal(TenantMixin, Base):
    __tablename__ = "security_signals"
    # Counts and ids; the monitor deletes them after a day, the usage-log purge in any case.
    __retention__ = Retention.USAGE_LOG
    __table_args__ = (UniqueConstraint("organisation_id", "kind", "subject_id", "minute"),)

    kind: Mapped[str] = mapped_column(String(40))
    # What the signal is about (a WhatsApp number's id).
    subject_id: Mapped[uuid.UUID]
    minute: Mapped[datetime]
    count: Mapped[int] = mapped_column(Integer)


class SecurityAlert(TenantMixin, Base):
    __tablename__ = "security_alerts"
    __retention__ = Retention.USAGE_LOG
    __table_args__ = (
        UniqueConstraint(
            "organisation_id",
            "kind",
            "subject_id",
            "window_start",
            postgresql_nulls_not_distinct=True,
        ),
    )

    kind: Mapped[str] = mapped_column(String(40))
    # A user's id (failed sign-ins), a number's id (signatures), none (the organisation).
    subject_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    window_start: Mapped[datetime]
    window_end: Mapped[datetime]
    count: Mapped[int] = mapped_column(Integer)
    threshold: Mapped[int] = mapped_column(Integer)
