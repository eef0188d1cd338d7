"""The API usage log: every request to ``/api/v1`` made with an API key, recorded after
its response without slowing it or ever failing it.

``ApiUsageMiddleware`` notes each such request once its response is sent (the key and
organisation that ``accounts.auth`` found, the route's template, the status and the
latency) and hands it to the process's ``ApiUsageRecorder``, which only appends it to
a bounded queue in memory. A background task writes the queue in batches (every
``FLUSH_SECONDS``, or sooner once ``BATCH`` calls wait), one transaction per batch. A
batch the database refuses goes back to the front of the queue and is written on a
later try; calls arriving while the queue holds ``QUEUE_LIMIT`` are dropped and counted
(``dropped``), never waited for. Stopping the app writes what is left.

Requests signed in with a browser session are not recorded: the log is about the
programs an organisation gave keys to, and a person's clicks would make it a record of
what that person did. ``report`` answers the dashboard and
``GET /api/v1/analytics/api-usage``: per key and route, requests, errors and latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog
from sqlalchemy import insert
from starlette.types import ASGIApp, Receive, Scope, Send

from cybergine.accounts.auth import API_KEY_CALL
from cybergine.analytics.api_usage_models import METHOD_LENGTH, ROUTE_LENGTH, ApiCall
from cybergine.db.engine import Database
from cybergine.db.ids import uuid7
from cybergine.response_status import ResponseStatus

log = structlog.get_logger(__name__)

PREFIX = "/api/v1/"
# Calls held in memory at most (about 2 MB); past it, new ones are dropped and counted.
QUEUE_LIMIT = 10_000
# Calls written per statement, and the queue length that wakes the writer early.
BATCH = 500
# The longest a call waits in memory before it is written (also the retry interval).
FLUSH_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class Call:
    organisation_id: uuid.UUID
    api_key_id: uuid.UUID
    method: str
    route: str
    status: int
    latency_ms: float
    at: datetime

    def row(self) -> dict[str, object]:
        return {
            "id": uuid7(),
            "organisation_id": self.organisation_id,
            "api_key_id": self.api_key_id,
            "method": self.method[:METHOD_LENGTH],
            "route": self.route[:ROUTE_LENGTH],
            "status": self.status,
            "latency_ms": self.latency_ms,
            "created_at": self.at,
        }


class ApiUsageRecorder:
    """The process's queue of calls not yet written, and the task writing them."""

    def __init__(
        self, *, limit: int = QUEUE_LIMIT, batch: int = BATCH, interval: float = FLUSH_SECONDS
    ) -> None:
        self.limit = limit
        self.batch = batch
        self.interval = interval
        self.written = 0
        self.dropped = 0
        self.failed_flushes = 0
        self._pending: deque[Call] = deque()
        self._wake: asyncio.Event | None = None
        self._reported_drops = 0
        self._database: Database | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    def record(self, call: Call) -> None:
        """Queue a call: no I/O, no wait, never an error."""
        if len(self._pending) >= self.limit:
            self.dropped += 1
            return
        self._pending.append(call)
        if len(self._pending) >= self.batch and self._wake is not None:
            self._wake.set()

    async def start(self, database: Database) -> None:
        self._database = database
        self._wake = asyncio.Event()  # of this loop
        self._task = asyncio.create_task(self._run(), name="api-usage-log")

    async def stop(self) -> None:
        """Stop the writer, then write what is left (one try: the process is ending)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
        if self._pending or self.dropped:
            log.warning("api_usage.lost", unwritten=len(self._pending), dropped=self.dropped)

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
            self._wake.clear()
            try:
                await self.flush()
            except Exception:  # never let the writer die: the calls wait for the next try
                log.exception("api_usage.writer_failed")
            if self.dropped > self._reported_drops:
                log.warning("api_usage.dropped", calls=self.dropped - self._reported_drops)
                self._reported_drops = self.dropped

    async def flush(self) -> int:
        """Write every queued call, a batch per transaction; on an error, keep the batch
        for the next try and stop. Returns how many were written."""
        written = 0
        while self._pending and self._database is not None:
            batch = [self._pending.popleft() for _ in range(min(self.batch, len(self._pending)))]
            try:
                async with self._database.transaction() as session:
                    await session.execute(insert(ApiCall), [call.row() for call in batch])
            except BaseException as error:
                self._requeue(batch)
                if not isinstance(error, Exception):
                    raise  # cancelled: the batch is back in the queue for stop()
                self.failed_flushes += 1
                log.warning("api_usage.flush_failed", calls=len(batch), error=str(error))
                return written
            written += len(batch)
            self.written += len(batch)
        return written

    def _requeue(self, batch: list[Call]) -> None:
        # Back in front, oldest first; what no longer fits under the limit is the newest.
        self._pending.extendleft(reversed(batch))
        while len(self._pending) > self.limit:
            self._pending.pop()
            self.dropped += 1


def _template(route: object) -> str:
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else "(unmatched)"


class ApiUsageMiddleware:
    """Notes each API request made with a key once its response is sent (plain ASGI: a
    streaming response stays streaming, and nothing here awaits anything)."""

    def __init__(self, app: ASGIApp, *, recorder: ApiUsageRecorder) -> None:
        self.app = app
        self.recorder = recorder

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        # The authentication writes the key it found here (``accounts.auth.API_KEY_CALL``);
        # a dict made now is shared with every copy of the scope made further in.
        state = scope.setdefault("state", {})
        at = datetime.now(UTC)
        started = time.perf_counter()
        status = ResponseStatus(send)
        try:
            await self.app(scope, receive, status)
        finally:
            found = state.get(API_KEY_CALL)
            if found is not None:
                principal, route = found
                if principal.api_key_id is not None:
                    self.recorder.record(
                        Call(
                            organisation_id=principal.organisation_id,
                            api_key_id=principal.api_key_id,
                            method=scope["method"],
                            route=_template(route),
                            status=status.code,
                            latency_ms=(time.perf_counter() - started) * 1000,
                            at=at,
                        )
                    )
