"""The hourly aggregates: sums of each conversation's row of figures (``facts``), kept
current incrementally (the refresh recomputes the rows of the conversations changed
since its mark, then sums the hours they began in again) or for a period (``cybergine
analytics rebuild``). Both run the same statements, so an incremental refresh and a
rebuild agree row for row.

Maintenance runs as a job, off the hot path: the job queue's periodic sweep defers one
refresh per organisation with changes (``REFRESH_ANALYTICS``, coalesced by a queueing
lock), which finds the changed conversations by ``conversations.updated_at`` (every
writer sets it, the SQL ingest functions included) and the ones that became idle by
``last_message_at``. Writers pay only the upkeep of a BRIN index on ``updated_at`` (a
summary per range of pages, no entry per row).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.analytics import buckets, customers, days, definitions, facts
from cybergine.analytics.models import DURATIONS
from cybergine.conversations.models import ConversationState

HOUR = timedelta(hours=1)
# A transaction that began before a refresh and commits after it wrote ``updated_at``
# earlier than the refresh's mark; looking this far back catches it (a transaction
# longer than the statement timeout cannot exist).
CHANGES_LOOKBACK = timedelta(minutes=5)
# A rebuild recomputes this much history per transaction.
REBUILD_STEP = timedelta(days=7)

_RANGE = "c.created_at >= :start AND c.created_at < :end"
_FACTS_RANGE = "f.started_at >= :start AND f.started_at < :end"
_TABLES = (
    "analytics_hourly",
    "analytics_hourly_model_usage",
    "analytics_hourly_sources",
    "analytics_hourly_reasons",
)
_KEY = "organisation_id, created_at, updated_at, id, hour, assistant_id, channel"
_KEY_VALUES = (
    "CAST(:organisation_id AS uuid), hour, now(), gen_random_uuid(), hour, assistant_id, channel"
)


def _figure_columns() -> dict[str, str]:
    """Each column of ``analytics_hourly`` and its aggregate over ``metrics`` rows."""
    columns = {"conversations": "count(*)"}
    for figure in definitions.Figure:
        if figure != definitions.Figure.CONVERSATIONS:
            columns[figure.value] = f"count(*) FILTER (WHERE {figure.predicate})"
    for state in ConversationState:
        columns[f"state_{state.value}"] = f"count(*) FILTER (WHERE metrics.state = '{state.value}')"
    for total in (
        "messages_in",
        "messages_out",
        "assistant_answers",
        "grounded_answers",
        "fallbacks",
        "prompt_tokens",
        "completion_tokens",
    ):
        columns[total] = f"coalesce(sum(metrics.{total}), 0)"
    for name in DURATIONS:
        for kind in ("", "_business"):
            columns[f"{name}{kind}_count"] = f"count(metrics.{name}{kind}_seconds)"
            columns[f"{name}{kind}_seconds"] = f"coalesce(sum(metrics.{name}{kind}_seconds), 0)"
    for duration in buckets.RESPONSE_TIMES:
        for index, bucket in enumerate(buckets.BUCKETS):
            columns[buckets.column(duration, index)] = (
                f"count(*) FILTER (WHERE {bucket.predicate(duration)})"
            )
    return columns


FIGURE_COLUMNS = _figure_columns()

_INSERT_FIGURES = f"""
    INSERT INTO analytics_hourly ({_KEY}, {", ".join(FIGURE_COLUMNS)})
    SELECT {_KEY_VALUES}, {", ".join(FIGURE_COLUMNS)}
      FROM (SELECT metrics.hour, metrics.assistant_id, metrics.channel,
                   {", ".join(f"{sql} AS {name}" for name, sql in FIGURE_COLUMNS.items())}
              FROM ({facts.metrics(_FACTS_RANGE)}) AS metrics
             GROUP BY 1, 2, 3) AS figures
"""  # noqa: S608
_INSERT_MODEL_USAGE = f"""
    INSERT INTO analytics_hourly_model_usage
           ({_KEY}, item, provider, model, answers, prompt_tokens, completion_tokens)
    SELECT {_KEY_VALUES}, item, provider, model, answers, prompt_tokens, completion_tokens
      FROM ({definitions.model_usage(_RANGE)}) AS usage
"""  # noqa: S608
_INSERT_SOURCES = f"""
    INSERT INTO analytics_hourly_sources ({_KEY}, item, citations)
    SELECT {_KEY_VALUES}, item, citations
      FROM ({definitions.cited_sources(_RANGE)}) AS sources
"""  # noqa: S608
_INSERT_HANDOFF_REASONS = f"""
    INSERT INTO analytics_hourly_reasons ({_KEY}, item, handoffs)
    SELECT {_KEY_VALUES}, item, count(*)
      FROM (SELECT f.hour, f.assistant_id, f.channel, f.handoff_reason AS item
              FROM analytics_conversations f
             WHERE f.organisation_id = :organisation_id AND ({_FACTS_RANGE})
               AND f.handoff_at IS NOT NULL) AS reasons
     GROUP BY hour, assistant_id, channel, item
"""  # noqa: S608
_INSERTS = (_INSERT_FIGURES, _INSERT_MODEL_USAGE, _INSERT_SOURCES, _INSERT_HANDOFF_REASONS)


@dataclass(frozen=True)
class Measure:
    """What "now" is for the idle rule, and the idle time itself."""

    now: datetime
    idle: timedelta

    @property
    def parameters(self) -> dict[str, object]:
        return {"now": self.now, "idle_seconds": self.idle.total_seconds()}


def measure_now(idle_hours: float) -> Measure:
    """The measure of a question asked now (``settings.analytics_idle_resolution_hours``)."""
    return Measure(now=datetime.now(UTC), idle=timedelta(hours=idle_hours))


async def _serialise(session: AsyncSession, organisation_id: uuid.UUID) -> None:
    """One writer of an organisation's aggregates at a time (a refresh job, a rebuild)."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"analytics:{organisation_id}"},
    )


async def recompute(
    session: AsyncSession,
    organisation_id: uuid.UUID,
    start: datetime,
    end: datetime,
    measure: Measure,
) -> None:
    """The aggregates of the hours in [start, end) (whole hours): sums of the
    conversations' rows (``facts``, current for the period), and the breakdowns by model
    and source from the messages; then the daily copies of the breakdowns for the UTC
    days those hours touch (``days``)."""
    parameters = {"organisation_id": organisation_id, "start": start, "end": end}
    for table in _TABLES:
        await session.execute(
            text(
                f"DELETE FROM {table} WHERE organisation_id = :organisation_id"  # noqa: S608
                " AND hour >= :start AND hour < :end"
            ),
            parameters,
        )
    for statement in _INSERTS:
        await session.execute(text(statement), {**parameters, **measure.parameters})
    await days.write(session, organisation_id, start, end)
    await customers.recompute(session, organisation_id, start, end)


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


def _runs(hours: Iterable[datetime]) -> list[tuple[datetime, datetime]]:
    """Sorted hours as contiguous [start, end) runs: one statement per run."""
    runs: list[tuple[datetime, datetime]] = []
    for hour in sorted(set(hours)):
        if runs and runs[-1][1] == hour:
            runs[-1] = (runs[-1][0], hour + HOUR)
        else:
            runs.append((hour, hour + HOUR))
    return runs


# The conversations changed since the mark (the BRIN index on ``updated_at`` reads only
# the pages written since; of those the look-back takes again, only the ones whose row
# changed since its figures were computed), and those that became idle (their last
# message crossed the idle time) since.
_CHANGED = """
    SELECT c.id, date_trunc('hour', c.created_at) AS hour
      FROM conversations c
      LEFT JOIN analytics_conversations f ON f.conversation_id = c.id
     WHERE c.organisation_id = :organisation_id
       AND c.updated_at >= CAST(:since AS timestamptz) - make_interval(secs => :lookback)
       AND f.conversation_version IS DISTINCT FROM c.xmin::text::bigint
     UNION
    SELECT c.id, date_trunc('hour', c.created_at) AS hour
      FROM conversations c
     WHERE c.organisation_id = :organisation_id
       AND c.last_message_at > CAST(:since AS timestamptz) - make_interval(secs => :idle_seconds)
       AND c.last_message_at <= CAST(:now AS timestamptz) - make_interval(secs => :idle_seconds)
"""


async def refresh(session: AsyncSession, organisation_id: uuid.UUID, measure: Measure) -> int:
    """Bring the organisation's aggregates up to ``measure.now``: the rows of the
    conversations changed since the last refresh are recomputed (``facts``), then the
    hours they began in are summed again. Answers how many hours; a first refresh (no
    mark yet) recomputes every conversation and hour."""
    await _serialise(session, organisation_id)
    mark = await session.scalar(
        text(
            "SELECT refreshed_until FROM analytics_refresh_marks"
            " WHERE organisation_id = :organisation_id"
        ),
        {"organisation_id": organisation_id},
    )
    if mark is None:
        oldest = await session.scalar(
            text("SELECT min(created_at) FROM conversations WHERE organisation_id = :o"),
            {"o": organisation_id},
        )
        # A statement per week of history: each stays well within the statement timeout.
        for start, end in rebuild_steps(oldest or measure.now, measure.now):
            await facts.write_period(session, organisation_id, start, end, measure.parameters)
        found = list(
            await session.scalars(
                text(
                    "SELECT DISTINCT hour FROM analytics_conversations"
                    " WHERE organisation_id = :organisation_id"
                ),
                {"organisation_id": organisation_id},
            )
        )
    else:
        changed = (
            await session.execute(
                text(_CHANGED),
                {
                    "organisation_id": organisation_id,
                    "since": mark,
                    "lookback": CHANGES_LOOKBACK.total_seconds(),
                    **measure.parameters,
                },
            )
        ).all()
        if changed:
            await facts.write_conversations(
                session, organisation_id, [row.id for row in changed], measure.parameters
            )
        found = list({row.hour for row in changed})
    for start, end in _runs(found):
        await recompute(session, organisation_id, start, end, measure)
    await _set_mark(session, organisation_id, measure.now)
    return len(found)


async def _set_mark(session: AsyncSession, organisation_id: uuid.UUID, until: datetime) -> None:
    # created_at moves too: the retention purge ages a mark by it, and a mark purged
    # would make the next refresh recompute everything.
    await session.execute(
        text(
            """
            INSERT INTO analytics_refresh_marks
                   (id, organisation_id, refreshed_until, created_at, updated_at)
            VALUES (gen_random_uuid(), :organisation_id, :until, now(), now())
            ON CONFLICT (organisation_id) DO UPDATE
               SET refreshed_until = excluded.refreshed_until,
                   created_at = now(), updated_at = now()
            """
        ),
        {"organisation_id": organisation_id, "until": until},
    )


async def rebuild_step(
    session: AsyncSession,
    organisation_id: uuid.UUID,
    start: datetime,
    end: datetime,
    measure: Measure,
) -> None:
    """One transaction of a rebuild: [start, end) recomputed under the organisation's
    lock; the last step (``end`` past ``measure.now``) also moves the mark, since
    everything up to now is then counted."""
    await _serialise(session, organisation_id)
    await facts.write_period(session, organisation_id, start, end, measure.parameters)
    await recompute(session, organisation_id, start, end, measure)
    if end > measure.now:
        await _set_mark(session, organisation_id, measure.now)


def rebuild_steps(since: datetime, now: datetime) -> list[tuple[datetime, datetime]]:
    """[since, now] in ``REBUILD_STEP``s of whole hours, oldest first."""
    steps = []
    start = hour_of(since)
    end_of_all = hour_of(now) + HOUR
    while start < end_of_all:
        end = min(start + REBUILD_STEP, end_of_all)
        steps.append((start, end))
        start = end
    return steps


def refresh_lock(organisation_id: uuid.UUID) -> str:
    """The queueing lock of an organisation's refresh job: one waits at a time."""
    return f"analytics:{organisation_id}"


# Organisations with a conversation changed, or become idle, since their mark: the
# conversations changed since the oldest mark (BRIN index) whose row is not the one
# their figures were computed from are read once, then compared with their
# organisation's own mark.
_STALE_ORGANISATIONS = """
    WITH marks AS (
        SELECT o.id AS organisation_id, r.refreshed_until
          FROM organisations o
          LEFT JOIN analytics_refresh_marks r ON r.organisation_id = o.id
    ), changed AS (
        SELECT DISTINCT c.organisation_id, c.updated_at
          FROM conversations c
          LEFT JOIN analytics_conversations f ON f.conversation_id = c.id
         WHERE c.updated_at >= (SELECT min(refreshed_until) FROM marks)
                               - make_interval(secs => :lookback)
           AND f.conversation_version IS DISTINCT FROM c.xmin::text::bigint
    )
    SELECT m.organisation_id
      FROM marks m
     WHERE (m.refreshed_until IS NULL
            AND EXISTS (SELECT 1 FROM conversations c WHERE c.organisation_id = m.organisation_id))
        OR EXISTS (SELECT 1 FROM changed c
                    WHERE c.organisation_id = m.organisation_id
                      AND c.updated_at >= m.refreshed_until - make_interval(secs => :lookback))
        OR EXISTS (SELECT 1 FROM conversations c
                    WHERE c.organisation_id = m.organisation_id
                      AND c.last_message_at
                          > m.refreshed_until - make_interval(secs => :idle_seconds)
                      AND c.last_message_at
                          <= CAST(:now AS timestamptz) - make_interval(secs => :idle_seconds))
"""


async def stale_organisations(session: AsyncSession, measure: Measure) -> list[uuid.UUID]:
    """The organisations whose aggregates a refresh would change."""
    found = await session.scalars(
        text(_STALE_ORGANISATIONS),
        {"lookback": CHANGES_LOOKBACK.total_seconds(), **measure.parameters},
    )
    return list(found)
