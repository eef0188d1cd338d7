"""The breakdowns a long period reads per UTC day: model usage, sources cited, hand-off
reasons and embedding usage are kept per hour and per UTC day (``models``,
``embedding_usage_models``). A period (whole UTC hours, in any timezone) reads the daily
rows of the whole UTC days inside it and the hourly rows of its ragged edges: the hours
between its start and the first UTC midnight inside it, and between the last one and its
end. A year in Europe/Paris is then 364 daily rows per key and 24 hourly ones instead of
8,760 hourly ones; a zone with a non-whole-hour offset or a daylight saving time change
only moves the edges, never what is counted.

The daily rows are sums of the same rows of figures as the hourly ones, kept by the
refresh and the rebuild (``sums``), and by ``embedding_usage.record`` for embeddings.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

DAY = timedelta(days=1)

# Each breakdown kept per day: its hourly table, its daily table, the columns that are
# its key besides organisation, time, assistant and channel, and the ones summed.
BREAKDOWNS = {
    "model_usage": (
        "analytics_hourly_model_usage",
        "analytics_daily_model_usage",
        ("item", "provider", "model"),
        ("answers", "prompt_tokens", "completion_tokens"),
    ),
    "sources": (
        "analytics_hourly_sources",
        "analytics_daily_sources",
        ("item",),
        ("citations",),
    ),
    "handoff_reasons": (
        "analytics_hourly_reasons",
        "analytics_daily_reasons",
        ("item",),
        ("handoffs",),
    ),
}


def day_of(moment: datetime) -> datetime:
    """The start of the UTC day of ``moment`` (an aware time in any zone)."""
    return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def days_meeting(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The UTC days that [start, end) touches, as [first day, day after the last)."""
    last = day_of(end)
    return day_of(start), last + (DAY if last != end else timedelta())


@dataclass(frozen=True)
class Split:
    """[start, end) as its whole UTC days [first_day, last_day) and the edges around them;
    a period with no whole day inside has ``first_day == last_day == end``, so its hours
    are all edge."""

    start: datetime
    end: datetime
    first_day: datetime
    last_day: datetime

    @property
    def parameters(self) -> dict[str, object]:
        return {
            "start": self.start,
            "end": self.end,
            "first_day": self.first_day,
            "last_day": self.last_day,
        }


def split(start: datetime, end: datetime) -> Split:
    first = day_of(start)
    first += DAY if first != start else timedelta()
    last = day_of(end)
    if first > last:
        first = last = end
    return Split(start, end, first, last)


def rows(hourly: str, daily: str, columns: str, where: str) -> str:
    """SQL: the ``columns`` of the rows (alias ``h``, narrowed by ``where``) that cover
    :start to :end, the daily table's for :first_day to :last_day (``Split.parameters``)."""
    return (
        f"SELECT {columns} FROM {hourly} h WHERE h.organisation_id = :organisation_id"  # noqa: S608
        " AND (h.hour >= :start AND h.hour < :first_day"
        f" OR h.hour >= :last_day AND h.hour < :end) AND {where}"
        f" UNION ALL SELECT {columns} FROM {daily} h"
        " WHERE h.organisation_id = :organisation_id"
        f" AND h.day >= :first_day AND h.day < :last_day AND {where}"
    )
