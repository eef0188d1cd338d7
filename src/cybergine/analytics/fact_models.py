"""One row of figures per conversation (retention: usage logs, 12 months), written by the
analytics refresh from ``definitions.conversation_metrics``: what the hourly aggregates,
the CSV export and the count of unique customers read, so none of them computes a
conversation's figures from its messages again.

``created_at`` is the conversation's start (the retention purge ages a row by it); the
row goes with its conversation (foreign key). No text a customer wrote: the hand-off
reason is its code (``definitions.handoff_reason_code``), and the CSAT rating stays in
``csat_surveys`` (read from there by whoever needs it; the row keeps whether it was asked,
answered and positive). ``previous_at``: when the same
customer began their previous conversation (``previous_with_assistant_at``:
with the same assistant), so a period's distinct customers are the conversations whose
previous one began before it: a count, not a set of customers.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Float, ForeignKey, Index, String, UniqueConstraint, false, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from cybergine.conversations.models import Channel, ConversationState
from cybergine.db.base import Base, TenantMixin, value_enum
from cybergine.privacy.retention import Retention


class ConversationFacts(TenantMixin, Base):
    __tablename__ = "analytics_conversations"
    __retention__ = Retention.USAGE_LOG
    __table_args__ = (
        # A period's rows in order, and its distinct customers counted from the index.
        Index(
            None,
            "organisation_id",
            "started_at",
            postgresql_include=[
                "assistant_id",
                "channel",
                "previous_at",
                "previous_with_assistant_at",
            ],
        ),
        # The conversations whose previous one began at a given time (``customers``).
        Index("ix_analytics_conversations_previous", "organisation_id", "previous_at"),
        Index(
            "ix_analytics_conversations_previous_with_assistant",
            "organisation_id",
            "previous_with_assistant_at",
        ),
    )

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), unique=True
    )
    # No foreign key, as in the hourly aggregates: a deleted assistant's history stays.
    assistant_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    channel: Mapped[Channel] = mapped_column(value_enum(Channel, "channel"))
    state: Mapped[ConversationState] = mapped_column(
        value_enum(ConversationState, "conversation_state")
    )
    # The version (``xmin``) of the conversation's row the figures were computed from: a
    # conversation whose row has not changed since is not computed again.
    conversation_version: Mapped[int] = mapped_column(BigInteger)
    started_at: Mapped[datetime]
    hour: Mapped[datetime]
    previous_at: Mapped[datetime | None] = mapped_column(default=None)
    previous_with_assistant_at: Mapped[datetime | None] = mapped_column(default=None)
    handoff_at: Mapped[datetime | None] = mapped_column(default=None)
    handoff_reason: Mapped[str | None] = mapped_column(String(64), default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)

    messages_in: Mapped[int] = mapped_column(BigInteger, default=0)
    messages_out: Mapped[int] = mapped_column(BigInteger, default=0)
    assistant_answers: Mapped[int] = mapped_column(BigInteger, default=0)
    grounded_answers: Mapped[int] = mapped_column(BigInteger, default=0)
    fallbacks: Mapped[int] = mapped_column(BigInteger, default=0)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)

    answered_by_assistant: Mapped[bool] = mapped_column(default=False)
    resolved_by_assistant: Mapped[bool] = mapped_column(default=False)
    handed_to_person: Mapped[bool] = mapped_column(default=False)
    resolved: Mapped[bool] = mapped_column(default=False)
    with_fallback: Mapped[bool] = mapped_column(default=False)
    with_grounded_answer: Mapped[bool] = mapped_column(default=False, server_default=false())
    deflected: Mapped[bool] = mapped_column(default=False, server_default=false())
    # Its CSAT survey's outcome (``definitions.CSAT``): the rating itself stays in the survey.
    csat_surveys_sent: Mapped[bool] = mapped_column(default=False, server_default=false())
    csat_responses: Mapped[bool] = mapped_column(default=False, server_default=false())
    csat_positive: Mapped[bool] = mapped_column(default=False, server_default=false())
    # The assistant's answers per provider and model, and the sources they cited
    # (``definitions.model_usage``, ``definitions.cited_sources``): item ids and names of
    # models, no text.
    model_usage: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, default=list, server_default=text("'[]'::jsonb")
    )
    cited_sources: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, default=list, server_default=text("'[]'::jsonb")
    )

    first_response_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    first_response_business_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    agent_first_response_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    agent_first_response_business_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    human_first_response_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    human_first_response_business_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    resolution_seconds: Mapped[float | None] = mapped_column(Float, default=None)
    resolution_business_seconds: Mapped[float | None] = mapped_column(Float, default=None)


class DailyCustomers(TenantMixin, Base):
    """Conversations per UTC day (``day``) by the UTC day the customer's previous one
    began in (``previous_day``; none: their first), per assistant and channel, for
    both kinds of "previous" (``per_assistant``): what ``analytics.customers`` counts
    distinct customers with. Counts only (retention: aggregated analytics, 2 years,
    by the day)."""

    __tablename__ = "analytics_daily_customers"
    __retention__ = Retention.ANALYTICS
    __table_args__ = (
        Index(None, "organisation_id", "day"),
        # The key the refresh adds to (``sums``); a conversation without an assistant or
        # a previous one has a key too.
        UniqueConstraint(
            "organisation_id",
            "day",
            "previous_day",
            "per_assistant",
            "assistant_id",
            "channel",
            name="uq_analytics_daily_customers_key",
            postgresql_nulls_not_distinct=True,
        ),
    )

    day: Mapped[datetime]
    previous_day: Mapped[datetime | None] = mapped_column(default=None)
    per_assistant: Mapped[bool]
    # No foreign key, as in the hourly aggregates: a deleted assistant's history stays.
    assistant_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    channel: Mapped[Channel] = mapped_column(value_enum(Channel, "channel"))
    conversations: Mapped[int] = mapped_column(BigInteger, default=0)
