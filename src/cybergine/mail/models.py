"""E-mail the platform sends (invitations, password resets)."""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import Enum, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cybergine.db.base import Base
from cybergine.privacy.retention import Retention


class EmailStatus(enum.StrEnum):
    QUEUED = "queued"
    SENT = "sent"  # handed to the SMTP server; the body is then erased
    OUTBOX = "outbox"  # no SMTP configured: kept for the developer outbox
    FAILED = "failed"


class OutboundEmail(Base):
    __tablename__ = "outbound_emails"
    __retention__ = Retention.OPERATIONAL

    to_address: Mapped[str] = mapped_column(String(320))
    subject: Mapped[str] = mapped_column(String(300))
    # Holds single-use links: erased once sent, and outbox copies are pruned after a week.
    body_text: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[EmailStatus] = mapped_column(
        Enum(EmailStatus, name="email_status", values_callable=lambda e: [m.value for m in e]),
        default=EmailStatus.QUEUED,
    )
    error: Mapped[str | None] = mapped_column(String(500), default=None)
    sent_at: Mapped[datetime | None] = mapped_column(default=None)
