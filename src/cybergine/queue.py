"""What domain code needs from the job queue: deferring inside a transaction,
a session per job run, and the default retry policy.

Domain packages declare tasks on their own ``procrastinate.Blueprint`` in ``tasks.py``;
``cybergine.jobs`` adds them to the one App, defined here. A service defers a job by its
name (``cybergine.job_names``), never by importing a task module: task modules import
the services they run, so that would be a cycle. Job arguments carry ids only, never
personal data: the job table is operational data pruned on a short schedule. With
OpenTelemetry traces on, a job also carries its deferrer's trace context
(``observability.tracing.job_arguments``), which the worker takes out before its task
runs.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import procrastinate
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.db.engine import Database, raw_connection
from cybergine.job_names import JobName
from cybergine.observability.tracing import job_arguments
from cybergine.settings import Settings


@dataclass(frozen=True)
class Backoff(procrastinate.BaseRetryStrategy):
    """Exponential backoff with full jitter, capped.

    Procrastinate's own strategy grows without bound; a job retried for hours should
    not wait days between tries, and jitter keeps many failing jobs from retrying in
    lockstep against a recovering upstream.
    """

    max_attempts: int = 10
    base_seconds: float = 2.0
    cap_seconds: float = 600.0

    def delay_for(self, attempts: int) -> float:
        ceiling = min(self.cap_seconds, self.base_seconds * 2.0**attempts)
        jitter: float = random.uniform(0, ceiling / 2)  # noqa: S311 (jitter, not crypto)
        return ceiling / 2 + jitter

    def is_last_attempt(self, job: procrastinate.jobs.Job) -> bool:
        return job.attempts + 1 >= self.max_attempts

    def get_retry_decision(
        self, *, exception: BaseException, job: procrastinate.jobs.Job
    ) -> procrastinate.RetryDecision | None:
        if self.is_last_attempt(job):
            return None
        delay = self.delay_for(job.attempts)
        if isinstance(exception, RetryLater) and exception.seconds is not None:
            delay = max(delay, min(exception.seconds, self.cap_seconds))
        return procrastinate.RetryDecision(retry_in={"seconds": round(delay)})


class RetryLater(Exception):
    """Raised by a task that should run again later, not earlier than ``seconds`` when
    given (an upstream's Retry-After)."""

    def __init__(self, reason: str, *, seconds: float | None = None) -> None:
        super().__init__(reason)
        self.seconds = seconds


DEFAULT_RETRY = Backoff()

DATABASE_CONTEXT_KEY = "database"
SETTINGS_CONTEXT_KEY = "settings"

# The composition root that adds every domain's tasks to the App. Procrastinate imports
# it by this name the first time a job is deferred by name or a worker starts
# (``import_paths``), so a process that only defers (the web server without a worker)
# knows every task too, while this module, which every service imports, imports no domain.
COMPOSITION_ROOT = "cybergine.jobs"

# The one App. Its connector is replaced by the worker's pool (``jobs.Worker``); a defer
# runs on the caller's own connection (``defer``), so the App's is never opened.
APP = procrastinate.App(connector=procrastinate.PsycopgConnector(), import_paths=[COMPOSITION_ROOT])


async def defer(
    session: AsyncSession,
    job: JobName | procrastinate.tasks.Task[Any, Any, Any],
    *,
    schedule_at: datetime | None = None,
    queueing_lock: str | None = None,
    lock: str | None = None,
    **task_kwargs: Any,
) -> int:
    """Insert a job in ``session``'s transaction: it exists only if the caller commits.

    Services name the job (``JobName.REPLY``); a name the App does not know raises
    rather than queueing a job no worker runs. A task object is accepted for tasks whose
    module the caller owns anyway (tests)."""
    connection = await raw_connection(session)
    options: dict[str, Any] = {"connection": connection}
    if schedule_at is not None:
        options["schedule_at"] = schedule_at
    if queueing_lock is not None:
        options["queueing_lock"] = queueing_lock
    if lock is not None:
        options["lock"] = lock
    # The deferring span's trace context, when traces are on (observability.tracing).
    task_kwargs.update(job_arguments())
    deferrer = (
        APP.configure_task(job.value, allow_unknown=False, **options)
        if isinstance(job, JobName)
        else job.configure(**options)
    )
    job_id: int = await deferrer.defer_async(**task_kwargs)
    return job_id


async def bring_forward(session: AsyncSession, queueing_lock: str) -> bool:
    """The job waiting under ``queueing_lock`` for a later time runs as soon as a worker
    is free (an event said what it waited for has happened); True when there was one.
    Procrastinate refuses a second job under the lock, so this is how to say "now"."""
    moved = await session.execute(
        text(
            "UPDATE procrastinate_jobs SET scheduled_at = now() "
            "WHERE status = 'todo' AND queueing_lock = :lock "
            "AND (scheduled_at IS NULL OR scheduled_at > now()) RETURNING id"
        ),
        {"lock": queueing_lock},
    )
    return moved.first() is not None


async def cancel_waiting_jobs(session: AsyncSession, locks: Sequence[str]) -> int:
    """Cancel, in ``session``'s transaction, the jobs not started yet that hold one of
    ``locks`` (``conversation:…``, ``send:…``): Procrastinate's own cancel, for each job
    found through the lock index of migration 0010. A job already running is left to
    finish; tasks re-check the state they act on anyway."""
    cancelled = await session.execute(
        text(
            "SELECT procrastinate_cancel_job_v1(id, false, false) FROM procrastinate_jobs "
            "WHERE status = 'todo' AND lock = ANY(CAST(:locks AS varchar[]))"
        ),
        {"locks": list(locks)},
    )
    return sum(1 for (job_id,) in cancelled.all() if job_id is not None)


async def cancel_waiting_jobs_about(
    session: AsyncSession, job: JobName, argument: str, values: Sequence[str]
) -> int:
    """Cancel, as ``cancel_waiting_jobs`` does, the ``job`` jobs not started yet whose
    ``argument`` is one of ``values`` (jobs that hold no lock: a media fetch)."""
    if not values:
        return 0
    cancelled = await session.execute(
        text(
            "SELECT procrastinate_cancel_job_v1(id, false, false) FROM procrastinate_jobs "
            "WHERE status = 'todo' AND task_name = :task "
            "AND args ->> :argument = ANY(CAST(:values AS text[]))"
        ),
        {"task": job.value, "argument": argument, "values": list(values)},
    )
    return sum(1 for (job_id,) in cancelled.all() if job_id is not None)


async def jobs_are_waiting(session: AsyncSession) -> bool:
    """Whether any job is due and waiting for a worker (the retention purge makes way for
    the reply path's jobs only: ``privacy.purging.replies_waiting``). One probe of
    Procrastinate's partial index of waiting jobs."""
    waiting = await session.scalar(
        text(
            "SELECT EXISTS (SELECT 1 FROM procrastinate_jobs WHERE status = 'todo' "
            "AND (scheduled_at IS NULL OR scheduled_at <= now()))"
        )
    )
    return bool(waiting)


async def cancel_waiting_jobs_naming(
    session: AsyncSession, namespace: str, values: Sequence[str]
) -> int:
    """Cancel, as ``cancel_waiting_jobs`` does, the jobs of ``namespace`` (``shopify``)
    not started yet that name one of ``values`` in their arguments (a shop's id or its
    organisation's: whatever argument names its jobs use)."""
    cancelled = await session.execute(
        text(
            "SELECT procrastinate_cancel_job_v1(id, false, false) FROM procrastinate_jobs "
            "WHERE status = 'todo' AND task_name LIKE :prefix AND EXISTS "
            "(SELECT 1 FROM jsonb_each_text(args) AS a WHERE a.value = ANY(:values))"
        ),
        {"prefix": f"{namespace}:%", "values": list(values)},
    )
    return sum(1 for (job_id,) in cancelled.all() if job_id is not None)


async def forget_jobs_naming(session: AsyncSession, values: Sequence[str]) -> int:
    """Delete every job, of any task, that names one of ``values`` in its arguments,
    except those running now (their worker finishes them): what is erased leaves no job
    behind that names it. Jobs waiting are deleted too, so none runs for it later."""
    deleted = await session.execute(
        text(
            "DELETE FROM procrastinate_jobs WHERE status <> 'doing' AND EXISTS "
            "(SELECT 1 FROM jsonb_each_text(args) AS a WHERE a.value = ANY(:values))"
        ),
        {"values": list(values)},
    )
    return int(getattr(deleted, "rowcount", 0) or 0)


@asynccontextmanager
async def job_session(context: procrastinate.JobContext) -> AsyncIterator[AsyncSession]:
    """One session and transaction per job run; committed when the task returns."""
    database: Database = context.additional_context[DATABASE_CONTEXT_KEY]
    async with database.transaction() as session:
        yield session


def job_settings(context: procrastinate.JobContext) -> Settings:
    settings: Settings = context.additional_context[SETTINGS_CONTEXT_KEY]
    return settings
