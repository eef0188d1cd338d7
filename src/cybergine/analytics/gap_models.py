"""The customers' questions the assistant answered (the top questions) and among them the
knowledge gaps, the ones it could not answer from the knowledge base, each with its
vector and the group of questions of the same meaning it belongs to
(``analytics.gaps``). The tables keep the knowledge gaps' names they were made with.

A question's row is usage data about a customer (retention: usage logs, 12 months, by
``created_at``, which is when the question was asked); its text stays in ``messages``
(the row points at it, and goes with it), and its vector is declared in the privacy
registry, so a customer's export shows it and their erasure deletes the row. A group
holds no text: the mean of its questions' vectors, and whether someone answered it.
A day's counts per group (``GapDay``) are sums of the questions, kept by the database
as questions are written (``analytics.question_report`` reads them).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pgvector.sqlalchemy import Vector
from sqlalchemy import Float, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from cybergine.conversations.models import Channel
from cybergine.db.base import Base, TenantMixin, value_enum
from cybergine.knowledge.models import EMBEDDING_DIMENSIONS
from cybergine.privacy.retention import Retention


class GapGroup(TenantMixin, Base):
    """Questions of one meaning. ``centroid``: the normalised mean of its questions'
    vectors (by ``embedding_model``); ``answered_at``: when a Q&A pair was written for
    it from the knowledge gaps page (``answer_item_id``: that pair, while it exists)."""

    __tablename__ = "knowledge_gap_groups"
    __retention__ = Retention.USAGE_LOG

    centroid: Mapped[Any] = mapped_column(Vector(EMBEDDING_DIMENSIONS))
    embedding_model: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer, default=0)
    answered_at: Mapped[datetime | None] = mapped_column(default=None)
    answer_item_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("kb_items.id", ondelete="SET NULL"), default=None
    )


class GapQuestion(TenantMixin, Base):
    """A customer's question that got a grounded answer (``cause`` "grounded"), the
    fallback ("fallback") or that the model handed to a person ("handoff").
    ``created_at`` is when it was asked; ``similarity``: its cosine to its group's
    centroid when it joined the group; ``previous_at``: when its conversation last asked
    a question of the same group before it (none: never), and ``previous_gap_at``, for a
    knowledge gap's question, when it last asked there one of a gap's cause, so a
    period's conversations per group are counted, not gathered
    (``analytics.question_report``)."""

    __tablename__ = "knowledge_gap_questions"
    __retention__ = Retention.USAGE_LOG
    __table_args__ = (
        UniqueConstraint("message_id"),
        # A period's questions, counted per group from the index alone: a row's vector
        # makes it wide (a few rows per page), so reading a year of rows is what costs.
        Index(
            None,
            "organisation_id",
            "created_at",
            postgresql_include=[
                "group_id",
                "previous_at",
                "previous_gap_at",
                "cause",
                "assistant_id",
                "channel",
            ],
        ),
        # The questions whose conversation asked in the group shortly before a period.
        Index(
            None,
            "organisation_id",
            "previous_at",
            postgresql_where=text("previous_at IS NOT NULL"),
        ),
        Index(
            None,
            "organisation_id",
            "previous_gap_at",
            postgresql_where=text("previous_gap_at IS NOT NULL"),
        ),
        # A group's newest questions (its examples), read newest first.
        Index(None, "group_id", "created_at"),
    )

    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), index=True
    )
    # No foreign key, as in the hourly aggregates: a deleted assistant's gaps stay.
    assistant_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    channel: Mapped[Channel] = mapped_column(value_enum(Channel, "channel"))
    cause: Mapped[str] = mapped_column(String(16))
    group_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("knowledge_gap_groups.id", ondelete="SET NULL"), default=None
    )
    similarity: Mapped[float] = mapped_column(Float, default=1.0)
    previous_at: Mapped[datetime | None] = mapped_column(default=None)
    previous_gap_at: Mapped[datetime | None] = mapped_column(default=None)
    embedding: Mapped[Any] = mapped_column(Vector(EMBEDDING_DIMENSIONS))
    embedding_model: Mapped[str] = mapped_column(String(100))


# What a daily or monthly row of counts is per, besides its group and period.
_COUNTED_BY = ("previous_day", "previous_gap_day", "assistant_id", "channel", "cause")


def _counts_arguments(table: str, period: str) -> tuple[Any, ...]:
    return (
        # NULLS NOT DISTINCT: a first question and one without an assistant have a key too.
        UniqueConstraint(
            "organisation_id",
            "group_id",
            period,
            *_COUNTED_BY,
            name=f"uq_{table}_key",
            postgresql_nulls_not_distinct=True,
        ),
        Index(None, "organisation_id", period),
    )


class _QuestionCounts:
    """The questions of one group in one period whose conversation last asked in the
    group on ``previous_day`` (none: never) and, for a knowledge gap's, last asked there
    one of a gap's cause on ``previous_gap_day``, per assistant, channel and cause: how
    many, and the first and last asked."""

    group_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("knowledge_gap_groups.id", ondelete="CASCADE")
    )
    previous_day: Mapped[datetime | None] = mapped_column(default=None)
    previous_gap_day: Mapped[datetime | None] = mapped_column(default=None)
    # No foreign key, as in the hourly aggregates: a deleted assistant's gaps stay.
    assistant_id: Mapped[uuid.UUID | None] = mapped_column(default=None)
    channel: Mapped[Channel] = mapped_column(value_enum(Channel, "channel"))
    cause: Mapped[str] = mapped_column(String(16))
    questions: Mapped[int] = mapped_column(Integer)
    first_seen: Mapped[datetime]
    last_seen: Mapped[datetime]


class GapDay(_QuestionCounts, TenantMixin, Base):
    """A group's question counts of one UTC day (``day``). Kept by the database
    (``cybergine_knowledge_gap_days_keep``, a trigger on the questions), so every writer
    and every deletion of a question moves it; counts only, of rows that are usage data
    themselves (retention: usage logs; ``created_at`` is the end of the day, so the
    purge takes a row once all it counts is past that age)."""

    __tablename__ = "knowledge_gap_days"
    __retention__ = Retention.USAGE_LOG
    __table_args__ = _counts_arguments(__tablename__, "day")

    day: Mapped[datetime]


class GapMonth(_QuestionCounts, TenantMixin, Base):
    """The daily counts (``GapDay``) summed per UTC month (``month``), so a year's report
    reads a few rows per group and month. Kept by the database
    (``cybergine_knowledge_gap_months_keep``, statement triggers on the daily counts).
    ``previous_day`` and ``previous_gap_day`` are the daily rows', except that a day
    inside the row's own month is the month's first: a report reads a month row only for
    a whole month of its period, so a conversation that asked before in that month was
    never new to the period, whichever day it asked. Counts only (retention: usage logs;
    ``created_at`` is the end of the month)."""

    __tablename__ = "knowledge_gap_months"
    __retention__ = Retention.USAGE_LOG
    __table_args__ = _counts_arguments(__tablename__, "month")

    month: Mapped[datetime]


class GapMark(TenantMixin, Base):
    """Up to when an organisation's questions have been collected: the next collection
    reads the conversations changed since."""

    __tablename__ = "knowledge_gap_marks"
    __retention__ = Retention.USAGE_LOG
    __table_args__ = (UniqueConstraint("organisation_id"),)

    collected_until: Mapped[datetime]
