"""Every job's run time and failures by task: a Procrastinate worker middleware, which
wraps each job the worker runs (sync and async tasks alike)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from procrastinate import JobContext, exceptions
from procrastinate.middleware import AsyncCallNext
from procrastinate.worker import Worker

from cybergine.observability.metrics import JOB_FAILURES, JOB_SECONDS


async def observe_job(call_next: AsyncCallNext, context: JobContext, worker: Worker) -> Any:
    # Only a registered task reaches a middleware: its name is one of a fixed list.
    task = context.job.task_name
    started = time.perf_counter()
    try:
        result = await call_next()
    except (exceptions.JobAborted, asyncio.CancelledError):
        JOB_SECONDS.labels(task, "aborted").observe(time.perf_counter() - started)
        raise
    except BaseException:
        JOB_SECONDS.labels(task, "failed").observe(time.perf_counter() - started)
        JOB_FAILURES.labels(task).inc()
        raise
    JOB_SECONDS.labels(task, "succeeded").observe(time.perf_counter() - started)
    return result
