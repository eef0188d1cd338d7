"""Organisations: the tenants. Every tenant-owned row points at one."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import CheckConstraint, Enum, String
from sqlalchemy.orm import Mapped, mapped_column

from cybergine.db.base import Base
from cybergine.privacy.retention import Retention


class OrganisationStatus(enum.StrEnum):
    ACTIVE = "active"
    # Deleted by its owner; erased for good when the grace period ends (policy §11).
    PENDING_DELETION = "pending_deletion"


class Organisation(Base):
    __tablename__ = "organisations"
    __retention__ = Retention.ACCOUNT
    __table_args__ = (
        CheckConstraint("length(btrim(name)) > 0", name="name_not_blank"),
        CheckConstraint(
            "(status = 'pending_deletion') = (erase_after IS NOT NULL)",
            name="erase_after_iff_pending",
        ),
    )

    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[OrganisationStatus] = mapped_column(
        Enum(
            OrganisationStatus,
            name="organisation_status",
            values_callable=lambda e: [m.value for m in e],
        ),
        default=OrganisationStatus.ACTIVE,
        server_default=OrganisationStatus.ACTIVE.value,
    )
    # Set while pending deletion: when the erasure job may run.
    erase_after: Mapped[datetime | None] = mapped_column(default=None)
