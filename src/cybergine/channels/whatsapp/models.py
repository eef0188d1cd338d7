"""The organisation's WhatsApp business numbers, and the raw webhook events they receive.

A number's access token and app secret are stored encrypted; its webhook verify token is
only ever compared, so only its SHA-256 is kept. ``next_send_at`` is the shared clock of
the per-number send rate limit, so every worker process draws from the same budget.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ARRAY, Boolean, Float, ForeignKey, Index, Integer, String, Text, func
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from cybergine.db.base import Base, TenantMixin
from cybergine.privacy.crypto import EncryptedString
from cybergine.privacy.retention import Retention

PHONE_NUMBER_ID_LENGTH = 64
LAST_ERROR_LENGTH = 500


class WhatsAppNumber(TenantMixin, Base):
    __tablename__ = "whatsapp_numbers"
    __retention__ = Retention.ACCOUNT

    # The assistant that answers on this number; None: messages are kept for agents.
    assistant_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("assistants.id", ondelete="SET NULL"), index=True, default=None
    )
    # Meta's id of the number: webhooks are routed by it, so it is unique platform-wide.
    phone_number_id: Mapped[str] = mapped_column(String(PHONE_NUMBER_ID_LENGTH), unique=True)
    waba_id: Mapped[str] = mapped_column(String(64))
    display_phone_number: Mapped[str] = mapped_column(String(32))
    access_token: Mapped[str] = mapped_column(EncryptedString)
    # None: CYBERGINE_WHATSAPP_APP_SECRET / CYBERGINE_WHATSAPP_VERIFY_TOKEN.
    app_secret: Mapped[str | None] = mapped_column(EncryptedString, default=None)
    verify_token_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    # Extra words that opt a customer out or back in, beyond the built-in ones.
    opt_out_keywords: Mapped[list[str]] = mapped_column(ARRAY(String(50)), default=list)
    opt_in_keywords: Mapped[list[str]] = mapped_column(ARRAY(String(50)), default=list)
    # Messages per second; None: CYBERGINE_WHATSAPP_SEND_RATE.
    send_rate: Mapped[float | None] = mapped_column(Float, default=None)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    next_send_at: Mapped[datetime | None] = mapped_column(default=None)
    # What the number page shows a shop setting it up. The time of the last webhook
    # Meta delivered for it, to the minute (a process stamps a number at most once a
    # minute, so a busy number's row is not written on every delivery). The last thing
    # that went wrong: a send Meta refused, or a webhook whose signature did not match.
    # No personal data: Meta's error title (redacted of the text sent), never a customer.
    last_webhook_at: Mapped[datetime | None] = mapped_column(default=None)
    last_error: Mapped[str | None] = mapped_column(String(LAST_ERROR_LENGTH), default=None)
    last_error_at: Mapped[datetime | None] = mapped_column(default=None)


class WebhookEvent(TenantMixin, Base):
    """One change of a webhook delivery, as Meta sent it (its ``value`` object).

    A delivery may carry changes for numbers of several organisations; each organisation
    keeps only its own part. Pruned after a week: the messages hold what is kept. A
    partition a day (``db.partitions``): a day's partition is dropped a week after it.
    """

    __tablename__ = "whatsapp_webhook_events"
    __retention__ = Retention.OPERATIONAL
    # Pruning (after a week, or an organisation's shorter conversation period) by age.
    __table_args__ = (
        Index(None, "created_at"),
        {"postgresql_partition_by": "RANGE (created_at)"},
    )

    # The partition key is part of every unique key of a partitioned table.
    created_at: Mapped[datetime] = mapped_column(
        primary_key=True, server_default=func.now(), sort_order=100
    )

    whatsapp_number_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("whatsapp_numbers.id", ondelete="CASCADE"), index=True
    )
    field: Mapped[str] = mapped_column(String(64))
    value: Mapped[dict[str, Any]] = mapped_column(JSONB)
    messages: Mapped[int] = mapped_column(Integer, default=0)
    statuses: Mapped[int] = mapped_column(Integer, default=0)
    problems: Mapped[str | None] = mapped_column(Text, default=None)
