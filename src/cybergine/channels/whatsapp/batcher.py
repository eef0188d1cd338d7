"""Group commit for WhatsApp webhook deliveries.

Meta may send a thousand deliveries a second, and each must be acknowledged only once
it is committed. Committing them one by one costs a transaction (and a disk flush) and
several round trips each; instead, deliveries that arrive while a batch is being
written wait for the next one, and each batch is a single call of
``cybergine_whatsapp_ingest`` in one transaction. Under light load a batch is one
delivery and nothing waits; under heavy load batches grow by themselves.

A batch that fails (a deadlock with another process, one malformed delivery) is retried
delivery by delivery, so only a delivery that fails on its own is answered with an
error, and Meta delivers it again later.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import psycopg_pool
import structlog
from psycopg.types.json import Jsonb

from cybergine.channels.whatsapp.ingest import INGEST_NAMES
from cybergine.db.urls import libpq_url

log = structlog.get_logger(__name__)

MAX_DELIVERIES = 256
FLUSHES_IN_FLIGHT = 2

Item = dict[str, Any]


class IngestBatcher:
    def __init__(self, database_url: str, *, statement_timeout_ms: int = 30_000) -> None:
        self._pool = psycopg_pool.AsyncConnectionPool(
            libpq_url(database_url),
            min_size=1,
            max_size=FLUSHES_IN_FLIGHT,
            open=False,
            kwargs={"options": f"-c statement_timeout={statement_timeout_ms}"},
        )
        self._queue: asyncio.Queue[tuple[list[Item], asyncio.Future[None]]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self.batches = 0
        self.deliveries = 0

    async def start(self) -> None:
        await self._pool.open()
        self._task = asyncio.create_task(self._run(), name="whatsapp-ingest")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._pool.close()

    async def submit(self, items: list[Item]) -> None:
        """Store one delivery's items; returns once they are committed."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((items, done))
        await done

    async def _run(self) -> None:
        # Two batches in flight: one is written while the other commits (and flushes to
        # disk), so the database is never idle waiting for the web process.
        slots = asyncio.Semaphore(FLUSHES_IN_FLIGHT)
        running: set[asyncio.Task[None]] = set()
        try:
            while True:
                batch = [await self._queue.get()]
                await slots.acquire()
                while len(batch) < MAX_DELIVERIES and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                task = asyncio.create_task(self._flush_safely(batch, slots))
                running.add(task)
                task.add_done_callback(running.discard)
        finally:
            for task in running:
                task.cancel()

    async def _flush_safely(
        self, batch: list[tuple[list[Item], asyncio.Future[None]]], slots: asyncio.Semaphore
    ) -> None:
        try:
            await self._flush(batch)
        except Exception as error:  # never let the loop die: fail this batch only
            for _, done in batch:
                if not done.done():
                    done.set_exception(error)
        finally:
            slots.release()

    async def _flush(self, batch: list[tuple[list[Item], asyncio.Future[None]]]) -> None:
        items = [item for delivery, _ in batch for item in delivery]
        # Rows are locked in one order by every batch of every process, so two batches
        # wait for each other instead of deadlocking.
        items.sort(key=lambda item: item["lock_key"])
        try:
            await self._write(items)
        except Exception as error:
            if len(batch) == 1:
                raise
            log.warning("whatsapp.batch_failed", deliveries=len(batch), error=str(error))
            for delivery, done in batch:
                try:
                    await self._write(delivery)
                except Exception as single:
                    done.set_exception(single)
                else:
                    done.set_result(None)
            return
        self.batches += 1
        self.deliveries += len(batch)
        for _, done in batch:
            if not done.done():
                done.set_result(None)

    async def _write(self, items: list[Item]) -> None:
        async with self._pool.connection() as connection, connection.transaction():
            await connection.execute(
                "SELECT cybergine_whatsapp_ingest(%s, %s)", [Jsonb(items), Jsonb(INGEST_NAMES)]
            )
