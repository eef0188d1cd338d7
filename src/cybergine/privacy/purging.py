"""What every purger of the retention engine shares (``privacy.purgers``): the interface,
what a purge reports, and how its batches make way for the reply path.

A purger works in small batches, each its own short transaction (:func:`batch`) that
takes rows with ``FOR UPDATE SKIP LOCKED``: a row the reply path holds is left for the
next run instead of being waited for, and a batch holds its locks for milliseconds. A
batch's commit does not wait for its WAL to reach the disk (``synchronous_commit``
off): a crash loses at most the last batches, which the next run removes again, and the
replies' commits do not queue behind the purge's flushes.

After each batch a purger rests in proportion to the time the batch took (:class:`Pace`):
briefly while the reply path is idle, and far longer while its jobs (a reply to a
customer, a message to send) wait for a worker, so that then the purge takes a twentieth
of the machine and the replies keep the database (``bench/privacy.py`` runs WhatsApp
replies beside a purge of a million messages on a 2-core machine). Other jobs waiting
(a sweep, an export) do not slow it: they are background work as it is.
"""

from __future__ import annotations

import abc
import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, text
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.db.engine import Database
from cybergine.job_names import JobName
from cybergine.privacy.retention import Retention
from cybergine.settings import Settings

# Rows a batch removes at most: small enough that a batch's transaction lasts
# milliseconds, large enough that a million rows take a few hundred transactions.
BATCH_SIZE = 2000


# The jobs of the reply path, which a purge makes way for.
REPLY_PATH = (JobName.REPLY, JobName.SEND_WHATSAPP_MESSAGE)
_REPLIES_WAITING = text(
    "SELECT EXISTS (SELECT 1 FROM procrastinate_jobs WHERE status = 'todo'"
    " AND task_name = ANY (CAST(:tasks AS text[]))"
    " AND (scheduled_at IS NULL OR scheduled_at <= now()))"
)


async def replies_waiting(session: AsyncSession) -> bool:
    """Whether a job of the reply path is due and waiting for a worker (one probe of
    Procrastinate's partial index of waiting jobs)."""
    tasks = [name.value for name in REPLY_PATH]
    return bool(await session.scalar(_REPLIES_WAITING, {"tasks": tasks}))


def _default(setting: str) -> float:
    return float(Settings.model_fields[setting].default)


@dataclass(frozen=True)
class Pace:
    """A purger's rest after each batch, per second the batch took: ``busy`` while the
    reply path's jobs wait for a worker, ``idle`` while none do (the settings
    ``retention_purge_rest_busy`` and ``_idle``). At the defaults a purge works a
    twentieth of the time while replies wait, four fifths of it otherwise."""

    busy: float = _default("retention_purge_rest_busy")
    idle: float = _default("retention_purge_rest_idle")

    @classmethod
    def of(cls, settings: Settings) -> Pace:
        return cls(settings.retention_purge_rest_busy, settings.retention_purge_rest_idle)

    async def rest_after(self, database: Database, started: float) -> None:
        """Rest after a batch that began at ``started`` (``time.monotonic()``)."""
        took = time.monotonic() - started
        async with database.transaction() as session:
            busy = await replies_waiting(session)
        await asyncio.sleep(took * (self.busy if busy else self.idle))


@asynccontextmanager
async def batch(database: Database) -> AsyncIterator[AsyncSession]:
    """One batch's transaction: its commit does not wait for the WAL flush (see the
    module's docstring)."""
    async with database.transaction() as session:
        await session.execute(text("SET LOCAL synchronous_commit = off"))
        yield session


@dataclass(frozen=True)
class Removal:
    """Rows of one table, of one organisation (None: the platform's own), removed (or,
    in a dry run, due)."""

    organisation_id: uuid.UUID | None
    retention: Retention
    table: str
    rows: int


class Purger(abc.ABC):
    """Removes what is past its time for the classes in ``serves``."""

    serves: frozenset[Retention]

    @abc.abstractmethod
    def covers(self, table: Table) -> str | None:
        """How the purger removes the rows of ``table`` (for people reading a test
        failure or the dry run), or None when it does not."""

    @abc.abstractmethod
    async def due(self, database: Database, as_of: datetime) -> list[Removal]:
        """What a purge at ``as_of`` would remove, counted (the dry run)."""

    @abc.abstractmethod
    async def purge(
        self, database: Database, as_of: datetime, batch_size: int, pace: Pace
    ) -> list[Removal]:
        """Remove it, batch by batch, resting after each as ``pace`` says; what was
        removed."""


async def counts(session: AsyncSession, sql: str, params: Mapping[str, Any]) -> dict[str, int]:
    """The one row of ``sql``'s counts, by column."""
    row = (await session.execute(text(sql), dict(params))).one()
    return {name: int(value or 0) for name, value in row._mapping.items()}


def removals(
    organisation_id: uuid.UUID | None, retention: Retention, counted: Mapping[str, int]
) -> list[Removal]:
    return [
        Removal(organisation_id, retention, table, rows) for table, rows in counted.items() if rows
    ]
