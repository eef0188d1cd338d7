"""Time-partitioned tables: the tables that grow with traffic, split by ``created_at`` so
retention drops a whole partition instead of deleting its rows one by one.

Each table in ``PARTITIONED`` is ``PARTITION BY RANGE (created_at)`` (its model says so
with ``postgresql_partition_by``; its primary key is ``(id, created_at)``, since a
unique key of a partitioned table holds its partition key). It has one partition per
day or per month, in UTC, named ``<table>_pYYYYMMDD`` or ``<table>_pYYYYMM``, and a
``<table>_default`` partition, so an insert never fails, whatever its time.

- :func:`prepare` (the periodic job ``maintenance:prepare_partitions``, and the
  migration that made the tables) keeps the current partition and ``ahead`` more ready.
  A partition is made as a table of its own and then attached, which locks the parent
  only against other changes of its partitions (``SHARE UPDATE EXCLUSIVE``), never
  against reads and writes; rows the default partition already held for its range (a
  clock ahead, or a maintenance job that did not run) move into it in the same
  transaction.
- :func:`drop_expired` (the retention jobs, each with its table's period) detaches and
  drops the partitions whose whole range is older than the cut. The partition that
  straddles the cut, and the default one, keep the row deletes of the retention job,
  which the planner confines to them (partition pruning on ``created_at``).

Both wait at most ``LOCK_TIMEOUT`` for their locks: a long transaction on the table
makes them try again at their next run, rather than queue every writer behind them.
Erasure and export are unchanged: they read and delete rows across partitions.
``migrate.include_object`` keeps the partitions themselves out of Alembic's comparison.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

import psycopg.errors
import structlog
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.db.engine import Database

log = structlog.get_logger(__name__)

# While a drop waits for its exclusive lock on the table, every query of the table queues
# behind it: so a drop waits briefly, and a partition missed is taken at the next run
# (a day's partition is dropped at any of the day's hourly runs).
LOCK_TIMEOUT = "200ms"

Unit = Literal["day", "month"]


@dataclass(frozen=True)
class Partitioning:
    """How ``table`` is split: one partition per ``unit`` of ``created_at``, and
    ``ahead`` partitions after the current one kept ready."""

    table: str
    unit: Unit
    ahead: int

    @property
    def default(self) -> str:
        return f"{self.table}_default"

    def start_of(self, at: datetime) -> datetime:
        """The start of the partition that holds ``at``."""
        at = at.astimezone(UTC)
        day = at.day if self.unit == "day" else 1
        return datetime(at.year, at.month, day, tzinfo=UTC)

    def after(self, start: datetime) -> datetime:
        """The start of the partition after the one that starts at ``start``."""
        if self.unit == "day":
            return start + timedelta(days=1)
        return datetime(start.year + start.month // 12, start.month % 12 + 1, 1, tzinfo=UTC)

    def starts(self, first: datetime, last: datetime) -> list[datetime]:
        """The starts of the partitions from the one holding ``first`` to the one
        holding ``last``."""
        found, start = [], self.start_of(first)
        while start <= last:
            found.append(start)
            start = self.after(start)
        return found

    def name(self, start: datetime) -> str:
        return (
            f"{self.table}_p{start:%Y%m%d}" if self.unit == "day" else f"{self.table}_p{start:%Y%m}"
        )

    def start_named(self, name: str) -> datetime | None:
        """The start of the partition called ``name``; None for a name not ours."""
        digits = 8 if self.unit == "day" else 6
        match = re.fullmatch(rf"{re.escape(self.table)}_p(\d{{{digits}}})", name)
        if match is None:
            return None
        pattern = "%Y%m%d" if self.unit == "day" else "%Y%m"
        return datetime.strptime(match[1], pattern).replace(tzinfo=UTC)

    def is_partition(self, name: str) -> bool:
        return name == self.default or self.start_named(name) is not None

    def bounds(self, start: datetime) -> str:
        return f"FOR VALUES FROM ('{start.isoformat()}') TO ('{self.after(start).isoformat()}')"

    def create_statements(self, first: datetime, last: datetime) -> list[str]:
        """The default partition and those from the one of ``first`` to the one of
        ``last``, for a table that has none yet (its migration)."""
        return [f'CREATE TABLE "{self.default}" PARTITION OF "{self.table}" DEFAULT'] + [
            f'CREATE TABLE "{self.name(start)}" PARTITION OF "{self.table}" {self.bounds(start)}'
            for start in self.starts(first, last)
        ]


PARTITIONED: dict[str, Partitioning] = {
    partitioning.table: partitioning
    for partitioning in (
        # Kept a week: a day's partition goes a week after its day ended.
        Partitioning("whatsapp_webhook_events", "day", ahead=7),
        # Kept 12 months.
        Partitioning("api_usage_log", "month", ahead=1),
    )
}


def is_partition(name: str) -> bool:
    """Whether ``name`` is a partition of one of the partitioned tables."""
    return any(partitioning.is_partition(name) for partitioning in PARTITIONED.values())


def _locked_out(error: DBAPIError) -> bool:
    return isinstance(error.orig, psycopg.errors.LockNotAvailable)


async def _partitions(session: AsyncSession, table: str) -> list[str]:
    rows = await session.scalars(
        text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = CAST(:table AS regclass) ORDER BY c.relname"
        ),
        {"table": table},
    )
    return list(rows)


async def _attach(session: AsyncSession, partitioning: Partitioning, start: datetime) -> None:
    table, name = partitioning.table, partitioning.name(start)
    lower, upper = start, partitioning.after(start)
    await session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
    await session.execute(
        text(f'CREATE TABLE "{name}" (LIKE "{table}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)')
    )
    strays = text(
        f'SELECT EXISTS (SELECT 1 FROM "{partitioning.default}"'  # noqa: S608 (our names)
        " WHERE created_at >= :lower AND created_at < :upper)"
    )
    moving = await session.scalar(strays, {"lower": lower, "upper": upper})
    if moving:
        await session.execute(
            text(
                f'WITH gone AS (DELETE FROM "{partitioning.default}"'  # noqa: S608
                " WHERE created_at >= :lower AND created_at < :upper RETURNING *)"
                f' INSERT INTO "{name}" SELECT * FROM gone'
            ),
            {"lower": lower, "upper": upper},
        )
    await session.execute(
        text(f'ALTER TABLE "{table}" ATTACH PARTITION "{name}" {partitioning.bounds(start)}')
    )


async def prepare(database: Database, partitioning: Partitioning, now: datetime) -> list[str]:
    """Make the partitions of ``now`` and the ``ahead`` after it that do not exist yet,
    each in its own transaction; the names of those made. One its locks could not be
    had in time is left for the next run (logged)."""
    made: list[str] = []
    last = partitioning.start_of(now)
    for _ in range(partitioning.ahead):
        last = partitioning.after(last)
    wanted = partitioning.starts(now, last)
    async with database.transaction() as session:
        existing = set(await _partitions(session, partitioning.table))
    for start in wanted:
        name = partitioning.name(start)
        if name in existing:
            continue
        try:
            async with database.transaction() as session:
                await _attach(session, partitioning, start)
        except DBAPIError as error:
            if not _locked_out(error):
                raise
            log.warning("partitions.prepare_locked_out", partition=name)
            continue
        made.append(name)
    if made:
        log.info("partitions.prepared", table=partitioning.table, partitions=made)
    return made


@dataclass(frozen=True)
class Dropped:
    """A partition dropped, and the rows it held per organisation."""

    name: str
    rows: Counter[uuid.UUID]


async def drop_expired(
    database: Database, partitioning: Partitioning, cutoff: datetime
) -> list[Dropped]:
    """Detach and drop every partition whose whole range is older than ``cutoff``,
    oldest first, each in its own transaction, counting its rows per organisation first
    (under a lock that keeps writers out of it, so the count is what went). The default
    partition and the one holding ``cutoff`` are left to the row deletes."""
    async with database.transaction() as session:
        names = await _partitions(session, partitioning.table)
    expired = sorted(
        (start, name)
        for name in names
        if (start := partitioning.start_named(name)) is not None
        and partitioning.after(start) <= cutoff
    )
    dropped: list[Dropped] = []
    for _, name in expired:
        try:
            async with database.transaction() as session:
                await session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
                await session.execute(text(f'LOCK TABLE "{name}" IN SHARE MODE'))
                rows = await session.execute(
                    text(f'SELECT organisation_id, count(*) FROM "{name}" GROUP BY 1')  # noqa: S608
                )
                counted: Counter[uuid.UUID] = Counter({row[0]: int(row[1]) for row in rows})
                await session.execute(
                    text(f'ALTER TABLE "{partitioning.table}" DETACH PARTITION "{name}"')
                )
                await session.execute(text(f'DROP TABLE "{name}"'))
        except DBAPIError as error:
            if not _locked_out(error):
                raise
            log.warning("partitions.drop_locked_out", partition=name)
            continue
        dropped.append(Dropped(name, counted))
        log.info("partitions.dropped", partition=name, rows=sum(counted.values()))
    return dropped
