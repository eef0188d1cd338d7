"""How a period's conversations spread out: first response times in buckets (the
assistant's and people's), and conversations by local weekday and hour (the
hours-of-week heatmap); and the drill-down that lists the conversations behind any
figure, bucket or cell (``Selection``).

Both read the hourly aggregates: response times their bucket columns
(``analytics.buckets``), the heatmap their conversations, in the period's timezone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Subquery, Uuid, column, text

from cybergine.analytics import buckets, definitions
from cybergine.analytics.buckets import BUCKETS, RESPONSE_TIMES
from cybergine.analytics.periods import Filters
from cybergine.analytics.service import check_filters, metrics_in, metrics_parameters
from cybergine.db.tenancy import TenantScope

__all__ = ["BUCKETS", "RESPONSE_TIMES"]


async def response_times(scope: TenantScope, filters: Filters) -> dict[str, list[int]]:
    """Per response time of ``RESPONSE_TIMES``, the conversations of the period in each
    of ``BUCKETS`` (those without that response are in none): sums of the hourly
    aggregates' bucket columns, as the last refresh measured them."""
    await check_filters(scope, filters)
    sums = ", ".join(f"coalesce(sum(h.{name}), 0) AS {name}" for name in buckets.COLUMNS)
    row = (
        (
            await scope.session.execute(
                text(
                    f"SELECT {sums} FROM analytics_hourly h"  # noqa: S608
                    " WHERE h.organisation_id = :organisation_id"
                    " AND h.hour >= :start AND h.hour < :end AND " + filters.where("h")
                ),
                {
                    "organisation_id": scope.organisation_id,
                    "start": filters.period.start,
                    "end": filters.period.end,
                    **filters.parameters,
                },
            )
        )
        .mappings()
        .one()
    )
    return {
        duration: [int(row[buckets.column(duration, index)]) for index in range(len(BUCKETS))]
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
    organisation_id: uuid.UUID, selection: Selection, filters: Filters
) -> Subquery:
    """The ids of the conversations ``selection`` names (``conversation_id``), from the
    rows the aggregates are sums of, as the last refresh measured them."""
    where = " AND ".join(selection.predicates())
    parameters = metrics_parameters(organisation_id, filters)
    if ":tz" in where:
        parameters["tz"] = filters.period.timezone
    statement = (
        text(
            f"SELECT metrics.conversation_id FROM ({metrics_in(filters)}) AS metrics"  # noqa: S608
            f" WHERE {where}"
        )
        .bindparams(**parameters)
        .columns(column("conversation_id", Uuid))
    )
    return statement.subquery("selected_conversations")
