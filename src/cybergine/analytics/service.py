"""Answering analytics questions: the headline figures of a period beside the previous
one (``summary``), the same over time (``timeseries``), one row per conversation
(``conversation_rows``, streamed), and the conversations behind a figure
(``figure_conversations``, the drill-down).

Summary and time series read the hourly aggregates (``rollups``), the summary's
breakdowns their daily copies for the whole days of a period (``days``); unique customers,
which no sum of hours can give, and the CSV rows read each conversation's row of
figures (``facts``), which the aggregates are sums of, and so does the drill-down: a
figure and the conversations listed behind it cannot disagree.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Subquery, Uuid, column, text
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.analytics import customers, days, definitions, facts
from cybergine.analytics.models import DURATIONS
from cybergine.analytics.periods import Filters, Interval
from cybergine.analytics.sums import FIGURE_COLUMNS
from cybergine.assistants.models import Assistant
from cybergine.db.engine import raw_connection
from cybergine.db.tenancy import TenantScope

TOP_ITEMS = 10


async def check_filters(scope: TenantScope, filters: Filters) -> None:
    """An assistant named in the filters is the caller's (404 otherwise: another
    organisation's assistant is as unknown as a missing one)."""
    if filters.assistant_id is not None:
        await scope.get(Assistant, filters.assistant_id, what="assistant")


def _ratio(part: float, whole: float) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class Totals:
    """The sums of every aggregate column over a period, and what they give."""

    sums: dict[str, float]
    unique_customers: int

    def __getitem__(self, name: str) -> float:
        return self.sums[name]

    def average(self, duration: str, *, business: bool = False) -> float | None:
        kind = "_business" if business else ""
        return _ratio(self.sums[f"{duration}{kind}_seconds"], self.sums[f"{duration}{kind}_count"])

    def headline(self) -> dict[str, float | None]:
        """Every headline figure (the README's definitions)."""
        figures: dict[str, float | None] = {
            figure.value: self.sums[figure.value] for figure in definitions.Figure
        }
        figures["unique_customers"] = self.unique_customers
        for name in definitions.TOTALS:
            figures[name] = self.sums[name]
        conversations = self.sums["conversations"]
        figures["containment_rate"] = _ratio(self.sums["resolved_by_assistant"], conversations)
        figures["involvement_rate"] = _ratio(self.sums["answered_by_assistant"], conversations)
        figures["assistant_resolution_rate"] = _ratio(
            self.sums["resolved_by_assistant"], self.sums["answered_by_assistant"]
        )
        figures["handoff_rate"] = _ratio(self.sums["handed_to_person"], conversations)
        # Fin's answer and deflection rates: of the conversations the assistant answered.
        figures["answer_rate"] = _ratio(
            self.sums["with_grounded_answer"], self.sums["answered_by_assistant"]
        )
        figures["deflection_rate"] = _ratio(
            self.sums["deflected"], self.sums["answered_by_assistant"]
        )
        figures["grounded_rate"] = _ratio(
            self.sums["grounded_answers"], self.sums["assistant_answers"]
        )
        # CSAT: satisfied (4-5) answers per answer, and answers per survey sent.
        figures["csat_score"] = _ratio(self.sums["csat_positive"], self.sums["csat_responses"])
        figures["csat_response_rate"] = _ratio(
            self.sums["csat_responses"], self.sums["csat_surveys_sent"]
        )
        for duration in DURATIONS:
            figures[f"{duration}_seconds"] = self.average(duration)
            figures[f"{duration}_business_seconds"] = self.average(duration, business=True)
        return figures


_SUMS = ", ".join(f"coalesce(sum(h.{name}), 0) AS {name}" for name in FIGURE_COLUMNS)


async def _unique_customers(
    session: AsyncSession, organisation_id: uuid.UUID, filters: Filters
) -> dict[bool, int]:
    """Distinct customers of the conversations begun in the period (True) and in the
    previous one (False) (``customers``)."""
    previous_start, start = filters.period.previous
    return {
        True: await customers.count(session, organisation_id, filters, start, filters.period.end),
        False: await customers.count(session, organisation_id, filters, previous_start, start),
    }


@dataclass(frozen=True)
class Summary:
    current: Totals
    previous: Totals
    previous_start: datetime
    breakdowns: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


async def summary(scope: TenantScope, filters: Filters) -> Summary:
    """The period's figures, the previous period's beside them, and the breakdowns
    (by channel, assistant and state; model usage; top sources; hand-off reasons)."""
    await check_filters(scope, filters)
    session, organisation_id = scope.session, scope.organisation_id
    previous_start, start = filters.period.previous
    end = filters.period.end
    parameters = {
        "organisation_id": organisation_id,
        "previous_start": previous_start,
        "start": start,
        "end": end,
        **filters.parameters,
    }
    rows = (
        await session.execute(
            text(
                f"SELECT h.hour >= :start AS current, {_SUMS} FROM analytics_hourly h"  # noqa: S608
                " WHERE h.organisation_id = :organisation_id"
                " AND h.hour >= :previous_start AND h.hour < :end AND "
                + filters.where("h")
                + " GROUP BY 1"
            ),
            parameters,
        )
    ).mappings()
    sums = {True: dict.fromkeys(FIGURE_COLUMNS, 0.0)}
    sums[False] = dict(sums[True])
    for row in rows:
        sums[bool(row["current"])] = {name: float(row[name]) for name in FIGURE_COLUMNS}
    customers = await _unique_customers(session, organisation_id, filters)
    current = Totals(sums[True], customers[True])
    previous = Totals(sums[False], customers[False])
    return Summary(
        current, previous, previous_start, await _breakdowns(session, parameters, filters)
    )


def _days(breakdown: str, filters: Filters) -> str:
    """A breakdown's rows of the period: daily ones for its whole UTC days, hourly ones
    for its edges (``days``)."""
    hourly, daily, key, sums = days.BREAKDOWNS[breakdown]
    return days.rows(hourly, daily, ", ".join((*key, *sums, "h.assistant_id")), filters.where("h"))


async def _breakdowns(
    session: AsyncSession, parameters: dict[str, Any], filters: Filters
) -> dict[str, list[dict[str, Any]]]:
    within = (
        " WHERE h.organisation_id = :organisation_id AND h.hour >= :start AND h.hour < :end"
        " AND " + filters.where("h")
    )
    states = ", ".join(
        f"sum(h.state_{state.value}) AS {state.value}" for state in definitions.STATES
    )
    queries = {
        "by_channel": f"SELECT h.channel::text AS channel, sum(h.conversations) AS conversations,"  # noqa: S608
        f" sum(h.resolved_by_assistant) AS resolved_by_assistant FROM analytics_hourly h"
        f" {within} GROUP BY 1 ORDER BY 2 DESC, 1",
        "by_assistant": f"SELECT h.assistant_id, sum(h.conversations) AS conversations,"  # noqa: S608
        f" sum(h.resolved_by_assistant) AS resolved_by_assistant FROM analytics_hourly h"
        f" {within} GROUP BY 1 ORDER BY 2 DESC, 1",
        "by_state": f"SELECT {states} FROM analytics_hourly h {within}",  # noqa: S608
        "model_usage": "SELECT h.provider, h.model, h.assistant_id, sum(h.answers) AS answers,"  # noqa: S608
        " sum(h.prompt_tokens) AS prompt_tokens, sum(h.completion_tokens) AS completion_tokens"
        f" FROM ({_days('model_usage', filters)}) h GROUP BY 1, 2, 3 ORDER BY 4 DESC, 1, 2",
        "top_sources": "SELECT h.item AS item_id, k.title, sum(h.citations) AS citations"  # noqa: S608
        f" FROM ({_days('sources', filters)}) h"
        " LEFT JOIN kb_items k ON k.id::text = h.item AND k.organisation_id = :organisation_id"
        f" GROUP BY 1, 2 ORDER BY 3 DESC, 1 LIMIT {TOP_ITEMS}",
        "handoff_reasons": "SELECT h.item AS reason, sum(h.handoffs) AS handoffs"  # noqa: S608
        f" FROM ({_days('handoff_reasons', filters)}) h GROUP BY 1 ORDER BY 2 DESC, 1",
    }
    parameters = {**parameters, **days.split(parameters["start"], parameters["end"]).parameters}
    found: dict[str, list[dict[str, Any]]] = {}
    for name, sql in queries.items():
        rows = (await session.execute(text(sql), parameters)).mappings().all()
        found[name] = [
            {
                key: (
                    int(value)
                    if hasattr(value, "as_integer_ratio") and not isinstance(value, float)
                    else value
                )
                for key, value in row.items()
            }
            for row in rows
        ]
    if found["by_state"] and found["by_state"][0].get("bot") is None:
        found["by_state"] = [{state.value: 0 for state in definitions.STATES}]
    return found


@dataclass(frozen=True)
class Point:
    start: datetime
    totals: Totals


async def timeseries(scope: TenantScope, filters: Filters, interval: Interval) -> list[Point]:
    """The figures per hour, day or week of the period (local days and weeks, Monday
    first, in the period's timezone); every interval is there, empty ones with zeros."""
    await check_filters(scope, filters)
    sums = ", ".join(f"coalesce(sum(h.{name}), 0) AS {name}" for name in FIGURE_COLUMNS)
    rows = (
        await scope.session.execute(
            text(
                f"""
                WITH buckets AS (
                    SELECT generate_series(
                               date_trunc(:interval, CAST(:start AS timestamptz) AT TIME ZONE :tz),
                               (CAST(:end AS timestamptz) - interval '1 microsecond')
                                   AT TIME ZONE :tz,
                               CAST('1 ' || :interval AS interval)
                           ) AS local_start
                )
                SELECT b.local_start AT TIME ZONE :tz AS start, {sums}
                  FROM buckets b
                  LEFT JOIN analytics_hourly h
                    ON h.organisation_id = :organisation_id
                   AND h.hour >= :start AND h.hour < :end
                   AND date_trunc(:interval, h.hour AT TIME ZONE :tz) = b.local_start
                   AND {filters.where("h")}
                 GROUP BY b.local_start ORDER BY b.local_start
                """  # noqa: S608
            ),
            {
                "organisation_id": scope.organisation_id,
                "start": filters.period.start,
                "end": filters.period.end,
                "tz": filters.period.timezone,
                "interval": interval.value,
                **filters.parameters,
            },
        )
    ).mappings()
    return [
        Point(row["start"], Totals({n: float(row[n]) for n in FIGURE_COLUMNS}, 0)) for row in rows
    ]


def metrics_in(filters: Filters) -> str:
    """The rows of figures (``facts``) of the conversations begun in the period, under
    the filters: what the aggregates are sums of, so a figure and the conversations
    listed behind it agree."""
    return facts.metrics("f.started_at >= :start AND f.started_at < :end AND " + filters.where("f"))


def metrics_parameters(organisation_id: uuid.UUID, filters: Filters) -> dict[str, Any]:
    return {
        "organisation_id": organisation_id,
        "start": filters.period.start,
        "end": filters.period.end,
        **filters.parameters,
    }


def figure_conversations(
    organisation_id: uuid.UUID, figure: definitions.Figure, filters: Filters
) -> Subquery:
    """The ids of the conversations a figure counts (``conversation_id``): what the
    drill-down lists, from the rows the aggregates are sums of (as of the last refresh,
    which measured them)."""
    statement = (
        text(
            f"SELECT metrics.conversation_id FROM ({metrics_in(filters)}) AS metrics"  # noqa: S608
            f" WHERE {figure.predicate}"
        )
        .bindparams(**metrics_parameters(organisation_id, filters))
        .columns(column("conversation_id", Uuid))
    )
    return statement.subquery("figure_conversations")


# The CSV export's columns: each a column of a conversation's row of figures (``facts``)
# or of its CSAT survey.
CSV_COLUMNS = (
    "conversation_id",
    "started_at",
    "channel",
    "assistant_id",
    "state",
    "messages_in",
    "messages_out",
    "assistant_answers",
    "grounded_answers",
    "fallbacks",
    "answered_by_assistant",
    "resolved_by_assistant",
    "handed_to_person",
    "resolved",
    "with_grounded_answer",
    "deflected",
    "handoff_at",
    "handoff_reason",
    "resolved_at",
    *(f"{name}{kind}_seconds" for name in DURATIONS for kind in ("", "_business")),
    "prompt_tokens",
    "completion_tokens",
    "csat_surveys_sent",
    "csat_rating",
)


_CSV_MOMENTS = frozenset({"started_at", "handoff_at", "resolved_at"})
_CSV_YES_NO = frozenset(
    {
        "answered_by_assistant",
        "resolved_by_assistant",
        "handed_to_person",
        "resolved",
        "with_grounded_answer",
        "deflected",
        "csat_surveys_sent",
    }
)


def _csv_column(name: str) -> str:
    """A column as the CSV shows it: ISO 8601 UTC times, true/false."""
    if name in _CSV_MOMENTS:
        return (
            f"to_char(metrics.{name} AT TIME ZONE 'UTC',"
            f' \'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\') AS {name}'
        )
    if name in _CSV_YES_NO:
        return f"metrics.{name}::text AS {name}"
    return f"metrics.{name}"


def _csv_select(filters: Filters) -> str:
    """The export's statement: the period's rows of figures in order (read by their
    index), every value as text for PostgreSQL to write the CSV itself."""
    return (
        f"SELECT {', '.join(_csv_column(name) for name in CSV_COLUMNS)}"  # noqa: S608
        f" FROM ({metrics_in(filters)}) AS metrics"
        " ORDER BY metrics.started_at, metrics.conversation_id"
    )


# The longest an export may stream: a year of a busy organisation fits well within it.
EXPORT_TIMEOUT = "15min"


async def conversation_csv(
    session: AsyncSession, organisation_id: uuid.UUID, filters: Filters
) -> AsyncIterator[bytes]:
    """The export as CSV bytes (a header, then one row per conversation begun in the
    period, ``CSV_COLUMNS``, oldest first, as of the last refresh), written by
    PostgreSQL (``COPY ... TO STDOUT``) from the rows of figures and passed on as it
    arrives: memory stays flat, and no row is built in Python."""
    statement = (
        text(_csv_select(filters))
        .bindparams(**metrics_parameters(organisation_id, filters))
        .compile(dialect=session.get_bind().dialect)
    )
    await session.execute(text(f"SET LOCAL statement_timeout = '{EXPORT_TIMEOUT}'"))
    connection = await raw_connection(session)
    async with connection.cursor() as cursor:
        copy_statement = f"COPY ({statement.string}) TO STDOUT WITH (FORMAT csv, HEADER true)"
        async with cursor.copy(copy_statement, statement.params) as copy:
            async for chunk in copy:
                yield bytes(chunk)
