"""Distinct customers of a period, counted without gathering customers and mostly from
a daily aggregate (``analytics_daily_customers``).

A conversation counts its customer when the customer's previous conversation (with the
same assistant, when the question names one: ``facts``'
``previous_at``, ``previous_with_assistant_at``) began before the period, or never. The
aggregate counts each UTC day's conversations by the UTC day their previous one began
in, so for the whole days inside a period the count is a sum of the rows whose previous
day is before the period's first day; the rest is read from the rows of figures: the
conversations of the partial days at either end, and those of the whole days whose
previous one began on the day the period starts in but before its start.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.analytics.periods import Filters

DAY = timedelta(days=1)
_KINDS = {False: "previous_at", True: "previous_with_assistant_at"}


def day_of(moment: datetime) -> datetime:
    """The start of the UTC day of ``moment`` (an aware time in any zone)."""
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


async def count(
    session: AsyncSession,
    organisation_id: uuid.UUID,
    filters: Filters,
    start: datetime,
    end: datetime,
) -> int:
    """Distinct customers of the conversations begun in [start, end) (whole hours)."""
    per_assistant = filters.assistant_id is not None
    previous = f"f.{_KINDS[per_assistant]}"
    first_day = day_of(start) + (DAY if day_of(start) != start else timedelta())
    last_day = day_of(end)
    parameters = {
        "organisation_id": organisation_id,
        "start": start,
        "end": end,
        "first_day": first_day,
        "last_day": last_day,
        "start_day": day_of(start),
        **filters.parameters,
    }
    raw = (
        "SELECT count(*) FROM analytics_conversations f"  # noqa: S608
        " WHERE f.organisation_id = :organisation_id AND "
        + filters.where("f")
        + f" AND ({previous} IS NULL OR {previous} < :start) AND "
    )
    if first_day >= last_day:  # no whole day inside: a day or two of rows
        found = await session.scalar(
            text(raw + "f.started_at >= :start AND f.started_at < :end"), parameters
        )
        return int(found or 0)
    edges = await session.scalar(
        text(
            raw + "(f.started_at >= :start AND f.started_at < :first_day"
            " OR f.started_at >= :last_day AND f.started_at < :end)"
        ),
        parameters,
    )
    # Whole days whose conversation's previous one began on the start's day, before it.
    partial = await session.scalar(
        text(
            "SELECT count(*) FROM analytics_conversations f"  # noqa: S608
            " WHERE f.organisation_id = :organisation_id AND "
            + filters.where("f")
            + f" AND {previous} >= :start_day AND {previous} < :start"
            " AND f.started_at >= :first_day AND f.started_at < :last_day"
        ),
        parameters,
    )
    days = await session.scalar(
        text(
            "SELECT coalesce(sum(d.conversations), 0) FROM analytics_daily_customers d"  # noqa: S608
            " WHERE d.organisation_id = :organisation_id AND d.per_assistant = :per_assistant"
            " AND d.day >= :first_day AND d.day < :last_day"
            " AND (d.previous_day IS NULL OR d.previous_day < :start_day) AND " + filters.where("d")
        ),
        {**parameters, "per_assistant": per_assistant},
    )
    return int(edges or 0) + int(partial or 0) + int(days or 0)
