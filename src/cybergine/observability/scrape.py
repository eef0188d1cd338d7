"""What ``/metrics`` answers: the values every process of this host recorded, and the job
queue as PostgreSQL sees it now.

The queue is read when Prometheus asks, in one statement over the jobs waiting or
running (a partial index covers them), bounded by a two-second statement timeout: its
depth, its running jobs and the age of its longest-waiting job, for every queue the
platform's tasks use (zero when empty, so an alert on them never sees them vanish).
Every web process reports the same queue figures: aggregate them with ``max``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import structlog
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import text

from cybergine.db.engine import Database
from cybergine.observability.process import flush, shared_directory

log = structlog.get_logger(__name__)

QUEUE_DEPTH = "cybergine_job_queue_depth"
QUEUE_RUNNING = "cybergine_job_queue_running"
QUEUE_OLDEST_AGE = "cybergine_job_queue_oldest_age_seconds"
SCRAPE_TIMEOUT_MS = 2000

# The job longest waiting is approximated by the lowest id among those due (ids grow
# with time); it has waited since it was deferred, or since its retry came due.
_QUEUES = text(
    """
    WITH queued AS (
        SELECT queue_name,
               count(*) FILTER (WHERE status = 'todo'
                                AND (scheduled_at IS NULL OR scheduled_at <= now())) AS depth,
               count(*) FILTER (WHERE status = 'doing') AS running,
               min(id) FILTER (WHERE status = 'todo'
                               AND (scheduled_at IS NULL OR scheduled_at <= now())) AS oldest
        FROM procrastinate_jobs
        WHERE status IN ('todo', 'doing')
        GROUP BY queue_name
    )
    SELECT queued.queue_name, queued.depth, queued.running,
           coalesce(extract(epoch FROM now() - greatest(
               (SELECT min(e.at) FROM procrastinate_events e
                WHERE e.job_id = queued.oldest AND e.type = 'deferred'),
               job.scheduled_at)), 0)::float8 AS oldest_age
    FROM queued LEFT JOIN procrastinate_jobs job ON job.id = queued.oldest
    """
)


@dataclass(frozen=True)
class QueueRow:
    queue: str
    depth: int
    running: int
    oldest_age: float


async def read_queues(database: Database) -> list[QueueRow] | None:
    """The queues now (None: the database did not answer in time)."""
    try:
        async with database.transaction() as session:
            await session.execute(text(f"SET LOCAL statement_timeout = {SCRAPE_TIMEOUT_MS}"))
            rows = (await session.execute(_QUEUES)).all()
    except Exception as error:  # a scrape reports what it can; the rest is logged
        log.warning("metrics.queue_unreadable", error=type(error).__name__)
        return None
    return [QueueRow(r[0], int(r[1]), int(r[2]), max(0.0, float(r[3]))) for r in rows]


def queue_families(rows: Sequence[QueueRow], known: Iterable[str]) -> list[Metric]:
    by_queue = {row.queue: row for row in rows}
    depth = GaugeMetricFamily(
        QUEUE_DEPTH, "Jobs due and waiting for a worker, by queue.", labels=["queue"]
    )
    running = GaugeMetricFamily(QUEUE_RUNNING, "Jobs running now, by queue.", labels=["queue"])
    oldest = GaugeMetricFamily(
        QUEUE_OLDEST_AGE,
        "How long the longest-waiting due job has waited, by queue (0: none waits).",
        labels=["queue"],
    )
    for queue in sorted(set(known) | set(by_queue)):
        row = by_queue.get(queue, QueueRow(queue, 0, 0, 0.0))
        depth.add_metric([queue], row.depth)
        running.add_metric([queue], row.running)
        oldest.add_metric([queue], row.oldest_age)
    return [depth, running, oldest]


class _Families:
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def exposition(extra: list[Metric]) -> bytes:
    """Prometheus' text format: this host's processes (or this process alone) and
    ``extra``."""
    directory = shared_directory()
    registry = CollectorRegistry()
    registry.register(_Families(extra))
    if directory is not None:
        flush()
        MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY) + generate_latest(registry)


async def render(database: Database | None, known_queues: Iterable[str]) -> bytes:
    """The text ``/metrics`` answers; the queue's figures when given a ``database``."""
    rows = await read_queues(database) if database is not None else None
    extra = queue_families(rows, known_queues) if rows is not None else []
    return await asyncio.to_thread(exposition, extra)
