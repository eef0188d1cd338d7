"""How the conversations' rows of figures (``facts``) add up to the aggregates: the
hourly figures, the model usage, sources and hand-off reasons per hour and per UTC day,
and the daily counts of conversations by their customer's previous one (``customers``).

One statement per aggregate table, :func:`add`, adds a set of rows to it, or takes them
away (``sign`` -1), by an upsert on the table's key. The refresh takes the old rows of
the conversations that changed away, writes their new rows, adds those, and drops the
aggregate rows left with nothing (:func:`drop_empty`): its work is the size of the
change, not of the hour or the day it falls in. A rebuild clears whole UTC days
(:func:`clear`) and adds every row of them: the same statements, so an incremental
refresh and a rebuild agree (to the rounding of floating-point sums of seconds).

A conversation deleted outright (a retention purge, a deleted organisation's) takes
its row of figures with it, not its counts: the aggregates are kept longer than the
rows (aggregated analytics, 2 years; rows of figures, 12 months).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.analytics import buckets, days, definitions
from cybergine.analytics.models import DURATIONS
from cybergine.conversations.models import ConversationState

# A UTC day, from a UTC hour.
_DAY = "date_trunc('day', {} AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"


def _count(predicate: str) -> str:
    """How many signed rows match ``predicate`` (rows taken away count -1)."""
    return f"coalesce(sum(metrics.sign) FILTER (WHERE {predicate}), 0)"


def _total(expression: str) -> str:
    return f"coalesce(sum(metrics.sign * {expression}), 0)"


def _figure_columns() -> dict[str, str]:
    """Each column of ``analytics_hourly`` and what a set of signed rows of figures
    (``metrics``, with ``metrics.sign``) adds to it."""
    columns = {"conversations": _count("true")}
    for figure in definitions.Figure:
        if figure != definitions.Figure.CONVERSATIONS:
            columns[figure.value] = _count(figure.predicate)
    for state in ConversationState:
        columns[f"state_{state.value}"] = _count(f"metrics.state = '{state.value}'")
    for total in (
        "messages_in",
        "messages_out",
        "assistant_answers",
        "grounded_answers",
        "fallbacks",
        "prompt_tokens",
        "completion_tokens",
    ):
        columns[total] = _total(f"metrics.{total}")
    for name in DURATIONS:
        for kind in ("", "_business"):
            seconds = f"metrics.{name}{kind}_seconds"
            columns[f"{name}{kind}_count"] = _count(f"{seconds} IS NOT NULL")
            columns[f"{name}{kind}_seconds"] = _total(seconds)
    for duration in buckets.RESPONSE_TIMES:
        for index, bucket in enumerate(buckets.BUCKETS):
            columns[buckets.column(duration, index)] = _count(bucket.predicate(duration))
    return columns


FIGURE_COLUMNS = _figure_columns()


@dataclass(frozen=True)
class _Table:
    """An aggregate table: its time column (``hour`` or ``day``), the rest of its key,
    the columns a row is named by besides (set when it is first written), the columns
    summed, the rows they are read from (signed rows of figures ``metrics`` and what is
    joined to them), and the column that is zero exactly when a row counts nothing."""

    name: str
    grain: str
    keys: dict[str, str]
    names: dict[str, str]
    sums: dict[str, str]
    source: str
    counted: str

    def upsert(self, rows: str) -> str:
        """SQL: add the signed ``rows`` (SQL) to the table."""
        moment = "metrics.hour" if self.grain == "hour" else _DAY.format("metrics.hour")
        columns = {self.grain: moment, **self.keys, **self.names, **self.sums}
        grouped = ", ".join(str(position) for position in range(1, len(self.keys) + 2))
        added = ", ".join(f"{name} = t.{name} + excluded.{name}" for name in self.sums)
        return f"""
            INSERT INTO {self.name} AS t
                   (id, organisation_id, created_at, updated_at, {", ".join(columns)})
            SELECT gen_random_uuid(), CAST(:organisation_id AS uuid), d.{self.grain}, now(),
                   {", ".join(f"d.{name}" for name in columns)}
              FROM (SELECT {", ".join(f"{sql} AS {name}" for name, sql in columns.items())}
                      FROM ({rows}) AS metrics {self.source}
                     GROUP BY {grouped}) AS d
            ON CONFLICT ON CONSTRAINT uq_{self.name}_key
            DO UPDATE SET {added}, updated_at = now()
        """  # noqa: S608


_BY = {"assistant_id": "metrics.assistant_id", "channel": "metrics.channel"}
# The model usage and sources of each row, as ``facts`` keeps them (``definitions``).
_MODEL_USAGE = (
    "CROSS JOIN LATERAL jsonb_to_recordset(metrics.model_usage) AS u(item text,"
    " provider text, model text, answers bigint, prompt_tokens bigint,"
    " completion_tokens bigint)"
)
_SOURCES = (
    "CROSS JOIN LATERAL jsonb_to_recordset(metrics.cited_sources) AS u(item text, citations bigint)"
)


def _breakdowns(grain: str) -> tuple[_Table, ...]:
    prefix = "analytics_hourly" if grain == "hour" else "analytics_daily"
    return (
        _Table(
            f"{prefix}_model_usage",
            grain,
            {**_BY, "item": "u.item"},
            {"provider": "min(u.provider)", "model": "min(u.model)"},
            {
                "answers": _total("u.answers"),
                "prompt_tokens": _total("u.prompt_tokens"),
                "completion_tokens": _total("u.completion_tokens"),
            },
            _MODEL_USAGE,
            "answers",
        ),
        _Table(
            f"{prefix}_sources",
            grain,
            {**_BY, "item": "u.item"},
            {},
            {"citations": _total("u.citations")},
            _SOURCES,
            "citations",
        ),
        _Table(
            f"{prefix}_reasons",
            grain,
            {**_BY, "item": "metrics.handoff_reason"},
            {},
            {"handoffs": _count("true")},
            "WHERE metrics.handoff_at IS NOT NULL",
            "handoffs",
        ),
    )


_HOURLY = _Table("analytics_hourly", "hour", _BY, {}, FIGURE_COLUMNS, "", "conversations")
# Each row counted under both kinds of "previous conversation" (``customers``).
_CUSTOMERS = _Table(
    "analytics_daily_customers",
    "day",
    {"previous_day": _DAY.format("p.previous"), "per_assistant": "p.per_assistant", **_BY},
    {},
    {"conversations": _count("true")},
    "CROSS JOIN LATERAL (VALUES (false, metrics.previous_at),"
    " (true, metrics.previous_with_assistant_at)) AS p(per_assistant, previous)",
    "conversations",
)
TABLES = (_HOURLY, *_breakdowns("hour"), *_breakdowns("day"), _CUSTOMERS)


class Rows(enum.StrEnum):
    """The organisation's rows of figures ``add`` reads (SQL over ``f``), and the
    parameters each takes."""

    OF_CONVERSATIONS = "f.conversation_id = ANY(CAST(:ids AS uuid[]))"  # ids
    IN_PERIOD = "f.started_at >= :start AND f.started_at < :end"  # start, end


_UPSERTS = {
    rows: tuple(
        table.upsert(
            "SELECT CAST(:sign AS integer) AS sign, f.* FROM analytics_conversations f"  # noqa: S608
            f" WHERE f.organisation_id = :organisation_id AND ({rows.value})"
        )
        for table in TABLES
    )
    for rows in Rows
}


async def add(
    session: AsyncSession,
    organisation_id: uuid.UUID,
    rows: Rows,
    parameters: Mapping[str, object],
    *,
    sign: int,
) -> None:
    """Add the organisation's ``rows`` of figures to every aggregate (``sign`` 1), or
    take them away (-1)."""
    for statement in _UPSERTS[rows]:
        await session.execute(
            text(statement),
            {"organisation_id": organisation_id, "sign": sign, **parameters},
        )


async def drop_empty(
    session: AsyncSession, organisation_id: uuid.UUID, hours: Iterable[datetime]
) -> None:
    """Remove the aggregate rows of these hours, and of their UTC days, that count
    nothing any more: a rebuild would not write them."""
    moments = {"hour": sorted(set(hours))}
    moments["day"] = sorted({days.day_of(hour) for hour in moments["hour"]})
    for table in TABLES:
        await session.execute(
            text(
                f"DELETE FROM {table.name} WHERE organisation_id = :organisation_id"  # noqa: S608
                f" AND {table.grain} = ANY(CAST(:moments AS timestamptz[]))"
                f" AND {table.counted} = 0"
            ),
            {"organisation_id": organisation_id, "moments": moments[table.grain]},
        )


async def clear(
    session: AsyncSession, organisation_id: uuid.UUID, start: datetime, end: datetime
) -> None:
    """Remove every aggregate row of [start, end) (whole UTC days)."""
    for table in TABLES:
        await session.execute(
            text(
                f"DELETE FROM {table.name} WHERE organisation_id = :organisation_id"  # noqa: S608
                f" AND {table.grain} >= :start AND {table.grain} < :end"
            ),
            {"organisation_id": organisation_id, "start": start, "end": end},
        )
