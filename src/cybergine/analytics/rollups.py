"""The aggregates (``sums``: hourly figures, breakdowns per hour and UTC day, daily
customer counts), kept current incrementally by the refresh or recomputed for a period
(``cybergine analytics rebuild``).

Maintenance runs as a job, off the hot path: the job queue's periodic sweep defers one
refresh per organisation with changes (``REFRESH_ANALYTICS``, coalesced by a queueing
lock), which finds the changed conversations by ``conversations.updated_at`` (every
writer sets it, the SQL ingest functions included) and the ones that became idle by
``last_message_at``. Writers pay only the upkeep of a BRIN index on ``updated_at`` (a
summary per range of pages, no entry per row). The refresh then takes the changed
conversations' old rows of figures away from the aggregates, writes their new rows, and
adds those: its work follows the size of the change, not of the hours it falls in.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.analytics import days, facts, sums
from cybergine.privacy.retention import MAXIMUM_AGE, Retention

# A transaction that began before a refresh and commits after it wrote ``updated_at``
# earlier than the refresh's mark; looking this far back catches it (a transaction
# longer than the statement timeout cannot exist).
CHANGES_LOOKBACK = timedelta(minutes=5)
# A rebuild recomputes this much history per transaction.
REBUILD_STEP = timedelta(days=7)


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
    """The rows of figures of the conversations begun in [start, end) (whole UTC days)
    and every aggregate of those days, from the raw rows."""
    await sums.clear(session, organisation_id, start, end)
    await facts.write_period(session, organisation_id, start, end, measure.parameters)
    period = {"start": start, "end": end}
    await sums.add(session, organisation_id, sums.Rows.IN_PERIOD, period)


async def _move(
    session: AsyncSession, organisation_id: uuid.UUID, ids: list[uuid.UUID], measure: Measure
) -> None:
    """The rows of figures of these conversations recomputed, and the aggregates moved
    by the difference: the old rows taken away, the new ones added."""
    await sums.keep_old(session, ids)
    await facts.write_conversations(session, organisation_id, ids, measure.parameters)
    await sums.add(session, organisation_id, sums.Rows.CHANGED, {"ids": ids})


def hour_of(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


# The conversations changed since the mark (the BRIN index on ``updated_at`` reads only
# the pages written since; of those the look-back takes again, only the ones whose row
# changed since its figures were computed), and those that became idle (their last
# message crossed the idle time) since. A conversation without a row of figures that
# began before the rows' retention had its row purged: it stays counted as it was (the
# aggregates outlive the rows), not added a second time.
_CHANGED = """
    SELECT c.id, date_trunc('hour', c.created_at) AS hour
      FROM conversations c
      LEFT JOIN analytics_conversations f ON f.conversation_id = c.id
     WHERE c.organisation_id = :organisation_id
       AND c.updated_at >= CAST(:since AS timestamptz) - make_interval(secs => :lookback)
       AND f.conversation_version IS DISTINCT FROM c.xmin::text::bigint
       AND (f.id IS NOT NULL OR c.created_at >= :rows_since)
     UNION
    SELECT c.id, date_trunc('hour', c.created_at) AS hour
      FROM conversations c
      LEFT JOIN analytics_conversations f ON f.conversation_id = c.id
     WHERE c.organisation_id = :organisation_id
       AND c.last_message_at > CAST(:since AS timestamptz) - make_interval(secs => :idle_seconds)
       AND c.last_message_at <= CAST(:now AS timestamptz) - make_interval(secs => :idle_seconds)
       AND (f.id IS NOT NULL OR c.created_at >= :rows_since)
"""


async def refresh(session: AsyncSession, organisation_id: uuid.UUID, measure: Measure) -> int:
    """Bring the organisation's aggregates up to ``measure.now``: the rows of figures of
    the conversations changed since the last refresh are recomputed (``facts``), and the
    aggregates moved by the difference. Answers how many hours that touched; a first
    refresh (no mark yet) recomputes every row and aggregate, day by day."""
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
            await recompute(session, organisation_id, start, end, measure)
        hours = await session.scalar(
            text(
                "SELECT count(DISTINCT hour) FROM analytics_conversations"
                " WHERE organisation_id = :organisation_id"
            ),
            {"organisation_id": organisation_id},
        )
        await _set_mark(session, organisation_id, measure.now)
        return int(hours or 0)
    changed = (
        await session.execute(
            text(_CHANGED),
            {
                "organisation_id": organisation_id,
                "since": mark,
                "lookback": CHANGES_LOOKBACK.total_seconds(),
                "rows_since": measure.now - MAXIMUM_AGE[Retention.USAGE_LOG],
                **measure.parameters,
            },
        )
    ).all()
    touched = {row.hour for row in changed}
    if changed:
        await _move(session, organisation_id, [row.id for row in changed], measure)
        await sums.drop_empty(session, organisation_id, touched)
    await _set_mark(session, organisation_id, measure.now)
    return len(touched)


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
    await recompute(session, organisation_id, start, end, measure)
    if end > measure.now:
        await _set_mark(session, organisation_id, measure.now)


def rebuild_steps(since: datetime, now: datetime) -> list[tuple[datetime, datetime]]:
    """[since, now] in ``REBUILD_STEP``s of whole UTC days, oldest first: a day's
    aggregates are recomputed whole."""
    steps = []
    start = days.day_of(since)
    end_of_all = days.day_of(now) + days.DAY
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
