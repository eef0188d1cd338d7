"""How the conversations' rows of figures (``facts``) add up to the aggregates: the
hourly figures, the model usage, sources and hand-off reasons per hour and per UTC day,
and the daily counts of conversations by their customer's previous one (``customers``).

:func:`add` adds signed rows of figures (``sign`` 1 added, -1 taken away) to every
aggregate table in one statement, an upsert on each table's key. The refresh keeps the
old rows of the conversations that changed (:func:`keep_old`), writes their new rows,
and adds both, the old ones taken away (``Rows.CHANGED``): a group where they cancel out
writes nothing, and the aggregate rows left counting nothing are dropped
(:func:`drop_empty`). Its work follows the size of the change, not of the hour or the
day it falls in. A rebuild clears whole UTC days (:func:`clear`) and adds every row of
them (``Rows.IN_PERIOD``): the same statement, so an incremental refresh and a rebuild
agree (to the rounding of floating-point sums of seconds).

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
    for total in definitions.TOTALS:
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
        """SQL: add the signed ``rows`` (the name of a query) to the table; a group whose
        sums are all zero (rows that cancel out) writes nothing."""
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
                      FROM {rows} AS metrics {self.source}
                     GROUP BY {grouped}) AS d
             WHERE ({", ".join(f"d.{name}" for name in self.sums)})
                   IS DISTINCT FROM ({", ".join("0" for _ in self.sums)})
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


# The old rows of the conversations a refresh recomputes (``keep_old``), for the length
# of its transaction.
_OLD_ROWS = "analytics_old_rows"


class Rows(enum.StrEnum):
    """The signed rows of figures ``add`` adds (SQL), and the parameters each takes."""

    # The rows of the conversations begun in a period (``start``, ``end``), added.
    IN_PERIOD = (
        "SELECT 1 AS sign, f.* FROM analytics_conversations f"
        " WHERE f.organisation_id = :organisation_id"
        " AND f.started_at >= :start AND f.started_at < :end"
    )
    # Of the conversations recomputed (``ids``): the old rows taken away, the new added.
    CHANGED = (
        f"SELECT -1 AS sign, o.* FROM {_OLD_ROWS} o"  # noqa: S608
        " UNION ALL SELECT 1 AS sign, f.* FROM analytics_conversations f"
        " WHERE f.organisation_id = :organisation_id"
        " AND f.conversation_id = ANY(CAST(:ids AS uuid[]))"
    )


def _statement(rows: Rows) -> str:
    """One statement for every aggregate table: the rows read once, each table's upsert
    a part of it (they write different tables)."""
    parts = ", ".join(
        f"added_{index} AS ({table.upsert('signed')})" for index, table in enumerate(TABLES)
    )
    return f"WITH signed AS MATERIALIZED ({rows.value}), {parts} SELECT 1"


_STATEMENTS = {rows: _statement(rows) for rows in Rows}


async def keep_old(session: AsyncSession, ids: list[uuid.UUID]) -> None:
    """Keep these conversations' rows as they are, for ``Rows.CHANGED`` once their new
    rows are written (until the transaction ends: one refresh per transaction)."""
    await session.execute(
        text(
            f"CREATE TEMPORARY TABLE {_OLD_ROWS} ON COMMIT DROP AS"  # noqa: S608
            " SELECT * FROM analytics_conversations"
            " WHERE conversation_id = ANY(CAST(:ids AS uuid[]))"
        ),
        {"ids": ids},
    )


async def add(
    session: AsyncSession,
    organisation_id: uuid.UUID,
    rows: Rows,
    parameters: Mapping[str, object],
) -> None:
    """Add the signed ``rows`` of figures to every aggregate."""
    await session.execute(
        text(_STATEMENTS[rows]), {"organisation_id": organisation_id, **parameters}
    )


async def drop_empty(
    session: AsyncSession, organisation_id: uuid.UUID, hours: Iterable[datetime]
) -> None:
    """Remove the aggregate rows of these hours, and of their UTC days, that count
    nothing any more (a rebuild would not write them): one statement."""
    hours = sorted(set(hours))
    moments = {"hour": ":hours", "day": ":days"}
    parts = ", ".join(
        f"emptied_{index} AS (DELETE FROM {table.name}"  # noqa: S608
        f" WHERE organisation_id = :organisation_id"
        f" AND {table.grain} = ANY(CAST({moments[table.grain]} AS timestamptz[]))"
        f" AND {table.counted} = 0)"
        for index, table in enumerate(TABLES)
    )
    await session.execute(
        text(f"WITH {parts} SELECT 1"),
        {
            "organisation_id": organisation_id,
            "hours": hours,
            "days": sorted({days.day_of(hour) for hour in hours}),
        },
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
