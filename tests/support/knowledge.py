"""Helpers for knowledge-base tests: run the indexing jobs, search through the API."""

from __future__ import annotations

from functools import cache
from typing import Any

import httpx
import procrastinate
from sqlalchemy import text

from cybergine.db.engine import Database
from cybergine.jobs import APP, Worker
from cybergine.settings import Settings


@cache
def tasks_without_schedule() -> procrastinate.App:
    """The one App's tasks without its periodic schedule. A worker's first act is to defer
    every periodic task due in the last ten minutes: in a test, the retention purge or an
    analytics sweep would then run inside an unrelated test, or not, by the minute of the
    hour. Jobs defer on the caller's connection (``cybergine.queue.defer``), so this App's
    own connector is never opened either."""
    APP.perform_import_paths()
    app = procrastinate.App(connector=procrastinate.PsycopgConnector())
    app.tasks = APP.tasks
    return app


# A worker run without waiting stops once one of its sub-workers finds the queue empty,
# which can be while another runs a job that then defers the next (a sweep's refresh, a
# sync's next step): the runs go on until no due job waits, this many at most.
_RUNS = 10
_DUE = text(
    "SELECT count(*) FROM procrastinate_jobs"
    " WHERE status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now())"
)


async def run_jobs(database: Database, settings: Settings) -> None:
    """Run every job the test has deferred and that is due, and every due job they
    defer, then return, without deferring the periodic ones (``tasks_without_schedule``)."""
    for _ in range(_RUNS):
        await Worker(database, settings=settings, concurrency=2, app=tasks_without_schedule()).run(
            wait=False, install_signal_handlers=False
        )
        async with database.transaction() as session:
            if not await session.scalar(_DUE):
                return


def search(api: httpx.Client, query: str, **options: Any) -> list[dict[str, Any]]:
    response = api.post("/api/v1/knowledge/search", json={"query": query, **options})
    assert response.status_code == 200, response.text
    results: list[dict[str, Any]] = response.json()["results"]
    return results
