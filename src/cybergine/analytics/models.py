"""Hourly aggregates of the analytics figures (retention: aggregated analytics, 2 years).

One row per organisation, hour, assistant and channel, plus three breakdowns of the same
key (model usage, sources cited, hand-off reasons), which are also kept per UTC day
(``days``). The hour is the one the conversation began in (``definitions``): every
figure counts conversations begun in a period and what happened in them since. No row
names a customer or holds anything a customer wrote; ``created_at`` is the row's hour
(day), so the retention purge ages a row by the time it measures rather than by when it
was last recomputed.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Float, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

# Each conversation's row of figures, which the aggregates are sums of (imported here so
# its table is known wherever these are).
from cybergine.analytics.fact_models import ConversationFacts as ConversationFacts
from cybergine.analytics.fact_models import DailyCustomers as DailyCustomers
from cybergine.conversations.models import Channel
from cybergine.db.base import Base, TenantMixin, value_enum
from cybergine.privacy.retention import Retention

# The columns a duration figure keeps per hour: how many conversations have one, their
# sum in seconds, and the same within the assistant's business hours (when it has them).
DURATIONS = ("first_response", "agent_first_response", "human_first_response", "resolution")


def _key(table: str, grain: str = "hour") -> tuple[UniqueConstraint, Index]:
    # NULLS NOT DISTINCT: a conversation without an assistant has a key too.
    return (
        UniqueConstraint(
            "organisation_id",
            grain,
            "assistant_id",
            "channel",
            *(() if table == "analytics_hourly" else ("item",)),
            name=f"uq_{table}_key",
            postgresql_nulls_not_distinct=True,
        ),
        Index(None, "organisation_id", grain),
    )


class _Key(TenantMixin):
    # No foreign key: a deleted assistant's history stays counted under its id.
    assistant_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    channel: Mapped[Channel] = mapped_column(value_enum(Channel, "channel"))


class _HourKey(_Key):
    hour: Mapped[datetime]


class _DayKey(_Key):
    # The start of a UTC day: its row is the sum of the day's 24 hourly rows.
    day: Mapped[datetime]


class HourlyFigures(_HourKey, Base):
    __tablename__ = "analytics_hourly"
    __retention__ = Retention.ANALYTICS
    __table_args__ = _key("analytics_hourly")

    conversations: Mapped[int] = mapped_column(BigInteger, default=0)
    answered_by_assistant: Mapped[int] = mapped_column(BigInteger, default=0)
    resolved_by_assistant: Mapped[int] = mapped_column(BigInteger, default=0)
    handed_to_person: Mapped[int] = mapped_column(BigInteger, default=0)
    resolved: Mapped[int] = mapped_column(BigInteger, default=0)
    with_fallback: Mapped[int] = mapped_column(BigInteger, default=0)
    with_grounded_answer: Mapped[int] = mapped_column(BigInteger, default=0)
    deflected: Mapped[int] = mapped_column(BigInteger, default=0)
    csat_surveys_sent: Mapped[int] = mapped_column(BigInteger, default=0)
    csat_responses: Mapped[int] = mapped_column(BigInteger, default=0)
    csat_positive: Mapped[int] = mapped_column(BigInteger, default=0)
    state_bot: Mapped[int] = mapped_column(BigInteger, default=0)
    state_waiting_for_human: Mapped[int] = mapped_column(BigInteger, default=0)
    state_human: Mapped[int] = mapped_column(BigInteger, default=0)
    state_closed: Mapped[int] = mapped_column(BigInteger, default=0)
    messages_in: Mapped[int] = mapped_column(BigInteger, default=0)
    messages_out: Mapped[int] = mapped_column(BigInteger, default=0)
    assistant_answers: Mapped[int] = mapped_column(BigInteger, default=0)
    grounded_answers: Mapped[int] = mapped_column(BigInteger, default=0)
    fallbacks: Mapped[int] = mapped_column(BigInteger, default=0)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)

    first_response_count: Mapped[int] = mapped_column(BigInteger, default=0)
    first_response_seconds: Mapped[float] = mapped_column(Float, default=0)
    first_response_business_count: Mapped[int] = mapped_column(BigInteger, default=0)
    first_response_business_seconds: Mapped[float] = mapped_column(Float, default=0)
    agent_first_response_count: Mapped[int] = mapped_column(BigInteger, default=0)
    agent_first_response_seconds: Mapped[float] = mapped_column(Float, default=0)
    agent_first_response_business_count: Mapped[int] = mapped_column(BigInteger, default=0)
    agent_first_response_business_seconds: Mapped[float] = mapped_column(Float, default=0)
    human_first_response_count: Mapped[int] = mapped_column(BigInteger, default=0)
    human_first_response_seconds: Mapped[float] = mapped_column(Float, default=0)
    human_first_response_business_count: Mapped[int] = mapped_column(BigInteger, default=0)
    human_first_response_business_seconds: Mapped[float] = mapped_column(Float, default=0)
    resolution_count: Mapped[int] = mapped_column(BigInteger, default=0)
    resolution_seconds: Mapped[float] = mapped_column(Float, default=0)
    resolution_business_count: Mapped[int] = mapped_column(BigInteger, default=0)
    resolution_business_seconds: Mapped[float] = mapped_column(Float, default=0)

    # Conversations per response-time bucket (``analytics.buckets``): the distributions.
    first_response_bucket_0: Mapped[int] = mapped_column(BigInteger, default=0)
    first_response_bucket_1: Mapped[int] = mapped_column(BigInteger, default=0)
    first_response_bucket_2: Mapped[int] = mapped_column(BigInteger, default=0)
    first_response_bucket_3: Mapped[int] = mapped_column(BigInteger, default=0)
    first_response_bucket_4: Mapped[int] = mapped_column(BigInteger, default=0)
    first_response_bucket_5: Mapped[int] = mapped_column(BigInteger, default=0)
    first_response_bucket_6: Mapped[int] = mapped_column(BigInteger, default=0)
    first_response_bucket_7: Mapped[int] = mapped_column(BigInteger, default=0)
    first_response_bucket_8: Mapped[int] = mapped_column(BigInteger, default=0)
    agent_first_response_bucket_0: Mapped[int] = mapped_column(BigInteger, default=0)
    agent_first_response_bucket_1: Mapped[int] = mapped_column(BigInteger, default=0)
    agent_first_response_bucket_2: Mapped[int] = mapped_column(BigInteger, default=0)
    agent_first_response_bucket_3: Mapped[int] = mapped_column(BigInteger, default=0)
    agent_first_response_bucket_4: Mapped[int] = mapped_column(BigInteger, default=0)
    agent_first_response_bucket_5: Mapped[int] = mapped_column(BigInteger, default=0)
    agent_first_response_bucket_6: Mapped[int] = mapped_column(BigInteger, default=0)
    agent_first_response_bucket_7: Mapped[int] = mapped_column(BigInteger, default=0)
    agent_first_response_bucket_8: Mapped[int] = mapped_column(BigInteger, default=0)


class _ModelUsage:
    """The assistant's answers per provider and model (``item``: "provider/model")."""

    item: Mapped[str] = mapped_column(String(201))
    provider: Mapped[str | None] = mapped_column(String(100), default=None)
    model: Mapped[str | None] = mapped_column(String(100), default=None)
    answers: Mapped[int] = mapped_column(BigInteger, default=0)
    prompt_tokens: Mapped[int] = mapped_column(BigInteger, default=0)
    completion_tokens: Mapped[int] = mapped_column(BigInteger, default=0)


class _Sources:
    """How often each knowledge source was cited (``item``: the source's item id)."""

    item: Mapped[str] = mapped_column(String(200))
    citations: Mapped[int] = mapped_column(BigInteger, default=0)


class _HandoffReasons:
    """Hand-offs per reason (``item``: a reason code, or ``other`` for a free-text one)."""

    item: Mapped[str] = mapped_column(String(64))
    handoffs: Mapped[int] = mapped_column(BigInteger, default=0)


class HourlyModelUsage(_HourKey, _ModelUsage, Base):
    __tablename__ = "analytics_hourly_model_usage"
    __retention__ = Retention.ANALYTICS
    __table_args__ = _key("analytics_hourly_model_usage")


class HourlySources(_HourKey, _Sources, Base):
    __tablename__ = "analytics_hourly_sources"
    __retention__ = Retention.ANALYTICS
    __table_args__ = _key("analytics_hourly_sources")


class HourlyHandoffReasons(_HourKey, _HandoffReasons, Base):
    __tablename__ = "analytics_hourly_reasons"
    __retention__ = Retention.ANALYTICS
    __table_args__ = _key("analytics_hourly_reasons")


# The same breakdowns per UTC day (``days``): what a long period reads for the whole
# days inside it, so a year is 365 rows per key rather than 8,760. The refresh and the
# rebuild keep them from the same rows of figures as the hourly ones (``sums``).
class DailyModelUsage(_DayKey, _ModelUsage, Base):
    __tablename__ = "analytics_daily_model_usage"
    __retention__ = Retention.ANALYTICS
    __table_args__ = _key("analytics_daily_model_usage", "day")


class DailySources(_DayKey, _Sources, Base):
    __tablename__ = "analytics_daily_sources"
    __retention__ = Retention.ANALYTICS
    __table_args__ = _key("analytics_daily_sources", "day")


class DailyHandoffReasons(_DayKey, _HandoffReasons, Base):
    __tablename__ = "analytics_daily_reasons"
    __retention__ = Retention.ANALYTICS
    __table_args__ = _key("analytics_daily_reasons", "day")


class RefreshMark(TenantMixin, Base):
    """Up to when an organisation's aggregates take its conversations into account: the
    next refresh recomputes the hours of conversations changed since."""

    __tablename__ = "analytics_refresh_marks"
    __retention__ = Retention.ANALYTICS
    __table_args__ = (UniqueConstraint("organisation_id"),)

    refreshed_until: Mapped[datetime]
