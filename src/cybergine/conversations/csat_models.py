"""Customer satisfaction surveys (retention: conversation history, policy §11): one per
conversation at most, asked when it closed, with the customer's rating once they give it.

The rating is the customer's opinion of a conversation, declared in the privacy
registry: their export shows it and their erasure deletes the row. The hourly
aggregates keep only counts.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, ForeignKey, Index, SmallInteger
from sqlalchemy.orm import Mapped, mapped_column

from cybergine.db.base import Base, TenantMixin
from cybergine.privacy.retention import Retention

LOWEST_RATING = 1
HIGHEST_RATING = 5
# A rating of at least this counts as satisfied (csat_score).
POSITIVE_RATING = 4


class CsatSurvey(TenantMixin, Base):
    __tablename__ = "csat_surveys"
    __retention__ = Retention.CONVERSATION
    __table_args__ = (
        CheckConstraint(
            f"rating BETWEEN {LOWEST_RATING} AND {HIGHEST_RATING}", name="rating_range"
        ),
        # A customer's latest survey: what a reply on WhatsApp answers.
        Index(None, "customer_id", "created_at"),
        # A message deleted (purge, erasure) sets its survey's message_id to NULL.
        Index(None, "message_id"),
    )

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), unique=True
    )
    customer_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("customers.id", ondelete="CASCADE"))
    # The message that asked.
    message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("messages.id", ondelete="SET NULL"), default=None
    )
    rating: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    rated_at: Mapped[datetime | None] = mapped_column(default=None)
