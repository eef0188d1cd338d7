"""The period an analytics question is about: local dates in a timezone, as whole UTC
hours (the aggregates' grain), and the period of the same length before it."""

from __future__ import annotations

import enum
import functools
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, available_timezones

from cybergine.conversations.models import Channel
from cybergine.errors import InvalidInput

# The longest period one question may cover (a year, leap day included).
MAX_DAYS = 366
# The days a question may name: the period before the earliest must still be a date.
EARLIEST = date(1970, 1, 1)
LATEST = date(2999, 12, 31)
# The period a question without dates is about: the last four weeks, today included.
DEFAULT_DAYS = 28


@functools.cache
def _known_zones() -> frozenset[str]:
    """The IANA zones by area ("Europe/Paris"), and UTC: not a file of the zone directory
    that merely parses (``localtime``, ``Factory``), which the database may not know."""
    return frozenset(zone for zone in available_timezones() if "/" in zone) | {"UTC"}


class Interval(enum.StrEnum):
    HOUR = "hour"
    DAY = "day"
    WEEK = "week"


def _ceil_hour(moment: datetime) -> datetime:
    """The next whole UTC hour from ``moment`` (itself if it is one), in its zone: a local
    midnight at +5:45 or +10:30 is no whole hour in local time's own terms either."""
    utc = moment.astimezone(UTC)
    floor = utc.replace(minute=0, second=0, microsecond=0)
    return (floor if floor == utc else floor + timedelta(hours=1)).astimezone(moment.tzinfo)


@dataclass(frozen=True)
class Period:
    """[start, end) in UTC, on hour boundaries: from the first local midnight of
    ``first`` to the local midnight after ``last`` (in a zone whose offset is not whole
    hours, each bound moves to the next whole UTC hour)."""

    first: date
    last: date
    timezone: str
    start: datetime
    end: datetime

    @property
    def previous(self) -> tuple[datetime, datetime]:
        """The period of the same length just before this one."""
        return self.start - (self.end - self.start), self.start


def _zone(timezone: str) -> ZoneInfo:
    if timezone not in _known_zones():
        raise InvalidInput(
            f"{timezone!r} is not a known timezone (e.g. 'Europe/Paris').", field="timezone"
        )
    return ZoneInfo(timezone)


def today_in(timezone: str) -> date:
    """Today's date in ``timezone`` (422, naming the field, for an unknown zone)."""
    return datetime.now(_zone(timezone)).date()


def period(first: date, last: date, timezone: str) -> Period:
    """The period from ``first`` to ``last`` (both included) in ``timezone``; refused
    (422, naming the field) when it ends before it starts, is longer than ``MAX_DAYS``
    or names no known zone."""
    zone = _zone(timezone)
    for name, day in (("from", first), ("to", last)):
        if not EARLIEST <= day <= LATEST:
            raise InvalidInput(f"Name a day from {EARLIEST} to {LATEST}.", field=name)
    if last < first:
        raise InvalidInput("The period ends before it starts.", field="to")
    if (last - first).days + 1 > MAX_DAYS:
        raise InvalidInput(f"A period covers at most {MAX_DAYS} days.", field="to")
    start = datetime.combine(first, time(), zone)
    end = datetime.combine(last + timedelta(days=1), time(), zone)
    return Period(first, last, timezone, _ceil_hour(start), _ceil_hour(end))


def period_of(
    first: date | None, last: date | None, timezone: str, *, days: int = DEFAULT_DAYS
) -> Period:
    """The period a question names, either day left out: ``last`` is then today in
    ``timezone``, ``first`` the day ``days - 1`` before ``last`` (never before
    ``EARLIEST``: a ``last`` near the start of the calendar is refused by :func:`period`,
    not an overflow)."""
    if last is None:
        last = today_in(timezone)
    if first is None:
        first = last - timedelta(days=days - 1) if last >= EARLIEST + timedelta(days) else EARLIEST
    return period(first, last, timezone)


@dataclass(frozen=True)
class Filters:
    """What every analytics question may narrow by."""

    period: Period
    assistant_id: uuid.UUID | None = None
    channel: Channel | None = None

    def where(self, table: str) -> str:
        """SQL narrowing ``table`` (a row with ``assistant_id`` and ``channel``) by the
        filters, with ``:assistant_id`` and ``:channel`` from :meth:`parameters`."""
        parts = []
        if self.assistant_id is not None:
            parts.append(f"{table}.assistant_id = :assistant_id")
        if self.channel is not None:
            parts.append(f"{table}.channel = CAST(:channel AS channel)")
        return " AND ".join(parts) or "true"

    @property
    def query(self) -> dict[str, str]:
        """The query parameters naming these filters in a link (``from``, ``to``,
        ``timezone``, and ``assistant_id`` and ``channel`` when set), as the API reads them."""
        found = {
            "from": self.period.first.isoformat(),
            "to": self.period.last.isoformat(),
            "timezone": self.period.timezone,
        }
        if self.assistant_id is not None:
            found["assistant_id"] = str(self.assistant_id)
        if self.channel is not None:
            found["channel"] = self.channel.value
        return found

    @property
    def parameters(self) -> dict[str, object]:
        """The values :meth:`where` names (only those: a text statement binds each)."""
        found: dict[str, object] = {}
        if self.assistant_id is not None:
            found["assistant_id"] = self.assistant_id
        if self.channel is not None:
            found["channel"] = self.channel.value
        return found
