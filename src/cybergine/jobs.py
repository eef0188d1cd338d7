"""The job queue's composition root: every domain's blueprint added to the one App
(``cybergine.queue.APP``), and the worker that runs it (``cybergine worker``, or inside
``serve`` in embedded mode).

Stopping: on SIGTERM (or when ``serve`` stops its in-process worker) a worker takes no
new job and lets its running jobs finish for ``worker_shutdown_grace_seconds``; jobs still
running then are cancelled and put back in the queue as they were (``ShutdownReleases``),
so another worker runs them at once and none is left in ``doing``.

Crash safety: a worker sends a heartbeat; when it dies (``kill -9``, a lost host) its
running jobs stay in ``doing``. Every worker looks for jobs of workers silent for longer
than ``worker_stalled_after_seconds`` when it starts and then at that same interval, and
re-queues them, so an interrupted job runs again instead of being lost. Tasks must
therefore be idempotent: a job may start more than once, and finishes once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

import procrastinate
import procrastinate.exceptions
import procrastinate.signals
import structlog
from procrastinate import JobContext
from procrastinate.job_context import AbortReason
from procrastinate.worker import Worker as ProcrastinateWorker
from sqlalchemy import text

from cybergine.accounts.tasks import blueprint as accounts_blueprint
from cybergine.analytics.gap_tasks import blueprint as knowledge_gaps_blueprint
from cybergine.analytics.tasks import blueprint as analytics_blueprint
from cybergine.catalog.tasks import blueprint as catalog_blueprint
from cybergine.channels.adapters import register_channel_adapters
from cybergine.channels.whatsapp.delivery import close_graph_clients
from cybergine.channels.whatsapp.tasks import blueprint as whatsapp_blueprint
from cybergine.conversations.tasks import blueprint as conversations_blueprint
from cybergine.db.engine import Database
from cybergine.db.partition_tasks import blueprint as partitions_blueprint
from cybergine.db.urls import libpq_url
from cybergine.knowledge.tasks import blueprint as knowledge_blueprint
from cybergine.mail.tasks import blueprint as mail_blueprint
from cybergine.observability.job_metrics import observe_job
from cybergine.observability.tracing import traced_job
from cybergine.privacy.organisation_export.tasks import blueprint as organisation_export_blueprint
from cybergine.privacy.request_tasks import blueprint as privacy_requests_blueprint
from cybergine.privacy.tasks import blueprint as privacy_blueprint
from cybergine.queue import APP as APP  # the App with every task: re-exported
from cybergine.queue import DATABASE_CONTEXT_KEY, SETTINGS_CONTEXT_KEY
from cybergine.ratelimits.tasks import blueprint as ratelimits_blueprint
from cybergine.security.tasks import blueprint as security_blueprint
from cybergine.settings import Settings, load_settings
from cybergine.shopify.sync_tasks import blueprint as shopify_sync_blueprint
from cybergine.shopify.tasks import blueprint as shopify_blueprint

log = structlog.get_logger(__name__)

# Finished jobs are operational data (ids, never content): keep a week of successes
# for debugging and a month of failures for investigation.
SUCCEEDED_JOBS_KEPT_HOURS = 7 * 24
FAILED_JOBS_KEPT_HOURS = 30 * 24

FETCH_POLLING_SECONDS = 0.5
# After losing the database, the worker starts again after 0.5 s, then 1, 2, 4, 8, 10 s.
RECONNECT_FIRST_SECONDS = 0.5
RECONNECT_MAX_SECONDS = 10.0

maintenance = procrastinate.Blueprint()


@maintenance.periodic(cron="17 3 * * *", periodic_id="prune_finished")
@maintenance.task(name="prune_finished_jobs", pass_context=True, queueing_lock="prune")
async def prune_finished_jobs(context: JobContext, timestamp: int) -> None:
    manager = context.app.job_manager
    await manager.delete_old_jobs(nb_hours=SUCCEEDED_JOBS_KEPT_HOURS)
    await manager.delete_old_jobs(
        nb_hours=FAILED_JOBS_KEPT_HOURS,
        include_failed=True,
        include_cancelled=True,
        include_aborted=True,
    )


async def requeue_stalled(app: procrastinate.App, seconds_since_heartbeat: float) -> int:
    stalled = list(
        await app.job_manager.get_stalled_jobs(seconds_since_heartbeat=seconds_since_heartbeat)
    )
    for job in stalled:
        log.warning("re-queueing job of a dead worker", job_id=job.id, task=job.task_name)
        await app.job_manager.retry_job(job)
    return len(stalled)


class ShutdownReleases:
    """Jobs a stopping worker cut short, put back in the queue once it has stopped.

    Procrastinate ends such a job as ``aborted`` (or, for a task with a retry policy, as
    a retry counted as a failed attempt and delayed by the backoff). Neither is right for
    a job nobody failed: it goes back to ``todo``, runnable now, with its attempts as
    they were when it started.
    """

    def __init__(self) -> None:
        self.attempts: dict[int, int] = {}  # job id -> attempts when it started

    async def middleware(
        self, call_next: Callable[[], Awaitable[Any]], context: JobContext, _: ProcrastinateWorker
    ) -> Any:
        try:
            return await call_next()
        except BaseException:
            job = context.job
            if job.id is not None and context.abort_reason() is AbortReason.SHUTDOWN:
                self.attempts[job.id] = job.attempts
            raise

    async def release(self, database: Database) -> int:
        if not self.attempts:
            return 0
        released = 0
        async with database.transaction() as session:
            for job_id, attempts in self.attempts.items():
                result = await session.execute(
                    text(
                        "UPDATE procrastinate_jobs SET status = 'todo', attempts = :attempts, "
                        "scheduled_at = NULL, abort_requested = false "
                        "WHERE id = :id AND status IN ('aborted', 'todo')"
                    ),
                    {"id": job_id, "attempts": attempts},
                )
                released += result.rowcount  # type: ignore[attr-defined]
        log.info("released jobs cut short by the shutdown", jobs=released)
        self.attempts.clear()
        return released


def add_every_blueprint(app: procrastinate.App) -> None:
    """Give ``app`` every domain's tasks, under the namespaces ``cybergine.job_names``
    spells the job names with."""
    app.add_tasks_from(accounts_blueprint, namespace="accounts")
    app.add_tasks_from(analytics_blueprint, namespace="analytics")
    app.add_tasks_from(knowledge_gaps_blueprint, namespace="analytics")
    app.add_tasks_from(catalog_blueprint, namespace="catalog")
    app.add_tasks_from(conversations_blueprint, namespace="conversations")
    app.add_tasks_from(knowledge_blueprint, namespace="knowledge")
    app.add_tasks_from(mail_blueprint, namespace="mail")
    app.add_tasks_from(privacy_blueprint, namespace="privacy")
    app.add_tasks_from(organisation_export_blueprint, namespace="organisation_export")
    app.add_tasks_from(privacy_requests_blueprint, namespace="privacy")
    app.add_tasks_from(ratelimits_blueprint, namespace="ratelimits")
    app.add_tasks_from(security_blueprint, namespace="security")
    app.add_tasks_from(shopify_blueprint, namespace="shopify")
    app.add_tasks_from(shopify_sync_blueprint, namespace="shopify")
    app.add_tasks_from(whatsapp_blueprint, namespace="whatsapp")
    app.add_tasks_from(maintenance, namespace="maintenance")
    app.add_tasks_from(partitions_blueprint, namespace="maintenance")


class Worker:
    """A Procrastinate worker bound to one database."""

    def __init__(
        self,
        database: Database,
        *,
        settings: Settings | None = None,
        concurrency: int = 8,
        heartbeat_seconds: float = 10.0,
        stalled_after_seconds: float = 30.0,
        shutdown_grace_seconds: float | None = None,
        name: str = "worker",
        app: procrastinate.App | None = None,
    ) -> None:
        self.database = database
        self.settings = settings or load_settings()
        self.app = app or APP
        self.concurrency = concurrency
        self.heartbeat_seconds = heartbeat_seconds
        self.stalled_after_seconds = stalled_after_seconds
        self.shutdown_grace_seconds = (
            self.settings.worker_shutdown_grace_seconds
            if shutdown_grace_seconds is None
            else shutdown_grace_seconds
        )
        self.name = name
        self.releases = ShutdownReleases()

    async def run(self, *, wait: bool = True, install_signal_handlers: bool = True) -> None:
        # LISTEN/NOTIFY holds one connection; the rest serve concurrent jobs.
        # A connection not had within the wait means the database is gone: the fetch loop
        # fails and ``_run`` starts again once it answers.
        connector = procrastinate.PsycopgConnector(
            conninfo=libpq_url(self.database.url),
            min_size=1,
            max_size=self.concurrency + 2,
            timeout=self.settings.worker_connection_wait_seconds,
        )
        with self.app.replace_connector(connector):
            async with self.app.open_async():
                watchdog = asyncio.create_task(self._requeue_stalled_forever())
                try:
                    await self._run(wait=wait, install_signal_handlers=install_signal_handlers)
                finally:
                    watchdog.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await watchdog
                    await close_graph_clients()
                    # Also when this task is being cancelled (``serve`` stopping): the
                    # jobs it cut short must not wait for the stalled-job watchdog.
                    await asyncio.shield(self.releases.release(self.database))

    async def _requeue_stalled_forever(self) -> None:
        while True:
            try:
                await requeue_stalled(self.app, self.stalled_after_seconds)
            except Exception:  # a transient database error must not kill the watchdog
                log.exception("could not look for stalled jobs")
            await asyncio.sleep(self.stalled_after_seconds)

    async def _run(self, *, wait: bool, install_signal_handlers: bool) -> None:
        """Runs Procrastinate's worker until asked to stop (SIGINT/SIGTERM, or this task
        cancelled). When it stops by itself because the database went away (a restart, a
        fail-over: its listener or a query fails), it starts again once the database
        answers, instead of ending the process with the queue unattended; the jobs it was
        running are re-queued by the stalled-job watchdog, as a killed worker's are."""
        current = asyncio.current_task()
        assert current is not None
        asked = asyncio.Event()

        def stop() -> None:  # a graceful stop: Procrastinate's, when its run is cancelled
            asked.set()
            current.cancel()

        signals = procrastinate.signals.on_stop(stop)
        delay = RECONNECT_FIRST_SECONDS
        with signals if install_signal_handlers else contextlib.nullcontext():
            while True:
                started = asyncio.get_running_loop().time()
                try:
                    await self._run_once(wait=wait)
                    reason = "stopped by itself"
                except procrastinate.exceptions.ConnectorException as exc:
                    if not (wait or asked.is_set()):
                        raise
                    reason = str(exc.__cause__ or exc)
                except asyncio.CancelledError:
                    if not asked.is_set():
                        raise
                if asked.is_set() or not wait:  # stopped as asked (also by a failure then)
                    if current.cancelling():
                        current.uncancel()
                    return
                if asyncio.get_running_loop().time() - started > RECONNECT_MAX_SECONDS:
                    delay = RECONNECT_FIRST_SECONDS  # it had been running: a new outage
                log.warning("worker.database_lost", reason=reason, retry_in=delay)
                try:
                    await asyncio.sleep(delay)
                except asyncio.CancelledError:
                    if not asked.is_set():
                        raise
                    current.uncancel()
                    return
                delay = min(delay * 2, RECONNECT_MAX_SECONDS)

    async def _run_once(self, *, wait: bool) -> None:
        await self.app.run_worker_async(
            name=self.name,
            concurrency=self.concurrency,
            wait=wait,
            # A run that stops once the queue is empty waits for no new job: listening
            # would cost a connection (a server process) for nothing.
            listen_notify=wait,
            install_signal_handlers=False,  # ``_run``'s, which outlive one run
            update_heartbeat_interval=self.heartbeat_seconds,
            stalled_worker_timeout=self.stalled_after_seconds,
            # New jobs arrive by NOTIFY at once; polling is what finds a job whose lock was
            # just released or whose retry has come due, so it must not wait 5 s.
            fetch_job_polling_interval=FETCH_POLLING_SECONDS,
            shutdown_graceful_timeout=self.shutdown_grace_seconds,
            worker_middleware=[
                # Always: it takes a deferrer's trace context out of the job's arguments.
                traced_job,
                *([observe_job] if self.settings.metrics else []),  # /metrics: time, failures
                self.releases.middleware,
            ],
            additional_context={
                DATABASE_CONTEXT_KEY: self.database,
                SETTINGS_CONTEXT_KEY: self.settings,
            },
        )


async def run_until_cancelled(worker: Worker) -> None:
    """Run ``worker`` as a background task of another process (``serve``)."""
    try:
        await worker.run(wait=True, install_signal_handlers=False)
    except asyncio.CancelledError:
        log.info("in-process worker stopped")
        raise


add_every_blueprint(APP)
# The channels the conversation core reaches through ``conversations.channel``.
register_channel_adapters()
