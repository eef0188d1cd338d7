"""How a period's conversations spread out: first response times in buckets (the
assistant's and people's), and conversations by local weekday and hour (the
hours-of-week heatmap); and the drill-down that lists the conversations behind any
figure, bucket or cell (``Selection``).

Response times read ``definitions.conversation_metrics`` (a duration's spread is not a
sum of hours); the heatmap reads the hourly aggregates, in the period's timezone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Subquery, Uuid, column, text

from cybergine.analytics import definitions, rollups
from cybergine.analytics.periods import Filters
from cybergine.analytics.service import check_filters
from cybergine.db.tenancy import TenantScope

# The response times a distribution shows, and what each is called.
RESPONSE_TIMES = {
    "first_response": "Assistant",
    "agent_first_response": "People",
}


@dataclass(frozen=True)
class Bucket:
    """[low, high) seconds; ``high`` None: no upper bound."""

    low: int
    high: int | None
    label: str

    def predicate(self, duration: str) -> str:
        value = f"metrics.{duration}_seconds"
        upper = f" AND {value} < {self.high}" if self.high is not None else ""
        return f"({value} >= {self.low}{upper})"


BUCKETS = (
    Bucket(0, 10, "under 10 s"),
    Bucket(10, 30, "10-30 s"),
    Bucket(30, 60, "30-60 s"),
    Bucket(60, 300, "1-5 min"),
    Bucket(300, 900, "5-15 min"),
    Bucket(900, 3600, "15-60 min"),
    Bucket(3600, 4 * 3600, "1-4 h"),
    Bucket(4 * 3600, 24 * 3600, "4-24 h"),
    Bucket(24 * 3600, None, "a day or more"),
)


def _metrics(filters: Filters) -> str:
    return definitions.conversation_metrics(
        "c.created_at >= :start AND c.created_at < :end AND " + filters.where("c")
    )


def _parameters(
    organisation_id: uuid.UUID, filters: Filters, measure: rollups.Measure
) -> dict[str, Any]:
    return {
        "organisation_id": organisation_id,
        "start": filters.period.start,
        "end": filters.period.end,
        **filters.parameters,
        **measure.parameters,
    }


async def response_times(
    scope: TenantScope, filters: Filters, measure: rollups.Measure
) -> dict[str, list[int]]:
    """Per response time of ``RESPONSE_TIMES``, the conversations of the period in each
    of ``BUCKETS`` (those without that response are in none)."""
    await check_filters(scope, filters)
    counts = ", ".join(
        f"count(*) FILTER (WHERE {bucket.predicate(duration)}) AS {duration}_{index}"
        for duration in RESPONSE_TIMES
        for index, bucket in enumerate(BUCKETS)
    )
    row = (
        (
            await scope.session.execute(
                text(f"SELECT {counts} FROM ({_metrics(filters)}) AS metrics"),  # noqa: S608
                _parameters(scope.organisation_id, filters, measure),
            )
        )
        .mappings()
        .one()
    )
    return {
        duration: [int(row[f"{duration}_{index}"]) for index in range(len(BUCKETS))]
        for duration in RESPONSE_TIMES
    }


# ISO weekdays, 1 = Monday.
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


async def hours_of_week(scope: TenantScope, filters: Filters) -> list[list[int]]:
    """Conversations begun in the period by local weekday (Monday first) and hour of
    day, in the period's timezone: seven rows of 24 counts."""
    await check_filters(scope, filters)
    rows = await scope.session.execute(
        text(
            "SELECT extract(isodow FROM h.hour AT TIME ZONE :tz)::int AS weekday,"  # noqa: S608
            " extract(hour FROM h.hour AT TIME ZONE :tz)::int AS hour,"
            " sum(h.conversations) AS conversations FROM analytics_hourly h"
            " WHERE h.organisation_id = :organisation_id AND h.hour >= :start AND h.hour < :end"
            " AND " + filters.where("h") + " GROUP BY 1, 2"
        ),
        {
            "organisation_id": scope.organisation_id,
            "start": filters.period.start,
            "end": filters.period.end,
            "tz": filters.period.timezone,
            **filters.parameters,
        },
    )
    grid = [[0] * 24 for _ in WEEKDAYS]
    for row in rows.mappings():
        grid[int(row["weekday"]) - 1][int(row["hour"])] = int(row["conversations"])
    return grid


@dataclass(frozen=True)
class Selection:
    """Which of a period's conversations a drill-down lists: those ``figure`` counts,
    narrowed to a local weekday (1-7) and/or hour of day (0-23) they began in, or to a
    bucket (index into ``BUCKETS``) of a response time of ``RESPONSE_TIMES``."""

    figure: definitions.Figure
    weekday: int | None = None
    hour: int | None = None
    response: str | None = None
    bucket: int | None = None

    def predicates(self) -> list[str]:
        found = [self.figure.predicate]
        # The hour the aggregates count a conversation in, on the period's wall clock.
        local = "(date_trunc('hour', metrics.started_at) AT TIME ZONE :tz)"
        if self.weekday is not None:
            found.append(f"extract(isodow FROM {local}) = {int(self.weekday)}")
        if self.hour is not None:
            found.append(f"extract(hour FROM {local}) = {int(self.hour)}")
        if self.response is not None and self.bucket is not None:
            assert self.response in RESPONSE_TIMES
            found.append(BUCKETS[self.bucket].predicate(self.response))
        return found


def selected_conversations(
    organisation_id: uuid.UUID,
    selection: Selection,
    filters: Filters,
    measure: rollups.Measure,
) -> Subquery:
    """The ids of the conversations ``selection`` names (``conversation_id``), by the
    statement the aggregates are made from."""
    where = " AND ".join(selection.predicates())
    parameters = _parameters(organisation_id, filters, measure)
    if ":tz" in where:
        parameters["tz"] = filters.period.timezone
    statement = (
        text(f"SELECT metrics.conversation_id FROM ({_metrics(filters)}) AS metrics WHERE {where}")  # noqa: S608
        .bindparams(**parameters)
        .columns(column("conversation_id", Uuid))
    )
    return statement.subquery("selected_conversations")
