"""A version of the privacy policy. Global: the platform's policy, not an organisation's.
Who acknowledged what is ``users.policy_acknowledged_at`` (the newest version recorded
before it is acknowledged)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import String, Text
from sqlalchemy.orm import Mapped, mapped_column

from cybergine.db.base import Base
from cybergine.privacy.retention import Retention

MAX_URL_CHARS = 500
MAX_SUMMARY_CHARS = 1000


class PolicyVersion(Base):
    __tablename__ = "policy_versions"
    # The platform's own notices, no one's data, but compliance records (policy §11, §18):
    # the proof of which version was in force when, and that every user was told 30 days
    # ahead, to which their acknowledgement refers. Kept while in force, then as long as
    # the audit trail (``privacy.purgers.AuditPurger``).
    __retention__ = Retention.AUDIT

    effective_on: Mapped[date]
    url: Mapped[str] = mapped_column(String(MAX_URL_CHARS))
    summary: Mapped[str] = mapped_column(Text)
    # Staff users e-mailed about it when it was recorded.
    notified_users: Mapped[int]
