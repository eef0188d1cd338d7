"""Partitioned tables: the tables that grow with traffic, split by time so retention
drops a whole partition instead of deleting its rows one by one.

Each table in ``PARTITIONED`` is ``PARTITION BY RANGE`` of its ``key`` (its model says
so with ``postgresql_partition_by``): ``created_at``, with a primary key of ``(id,
created_at)`` since a unique key of a partitioned table holds its partition key; or
``id``, a UUIDv7 whose first 48 bits are the millisecond it was made, so a partition is
the range of ids of its time and the primary key stays ``(id)`` (``messages``, which
other tables refer to). It has one partition per day, month or year, in UTC, named
``<table>_pYYYYMMDD``, ``<table>_pYYYYMM`` or ``<table>_pYYYY``, and a
``<table>_default`` partition, so an insert never fails, whatever its time. A unique
key without the partition key cannot hold across partitions: ``unique`` lists the
indexes each partition has of its own, and the table's writers ask for the key before
they insert (see ``db/sql/record_inbound_0046.sql``).

- :func:`prepare` (the periodic job ``maintenance:prepare_partitions``, and the
  migrations that made the tables) keeps the current partition and ``ahead`` more ready.
  A partition is made as a table of its own and then attached, which locks the parent
  only against other changes of its partitions (``SHARE UPDATE EXCLUSIVE``), never
  against reads and writes; rows the default partition already held for its range (a
  clock ahead, or a maintenance job that did not run) move into it in the same
  transaction.
- :func:`drop_expired` (the retention jobs, each with its table's period) detaches and
  drops the partitions whose whole range is older than the cut. The partition that
  straddles the cut, and the default one, keep the row deletes of the retention job,
  which the planner confines to them (partition pruning on ``created_at``). Messages
  are kept for each organisation's own period: their purge drops a partition only once
  every row in it has expired (``privacy.conversation_purge``), with
  :func:`detach_and_drop`.

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
from cybergine.db.ids import uuid7_floor

log = structlog.get_logger(__name__)

# While a drop waits for its exclusive lock on the table, every query of the table queues
# behind it: so a drop waits briefly, and a partition missed is taken at the next run
# (a day's partition is dropped at any of the day's hourly runs).
LOCK_TIMEOUT = "200ms"

Unit = Literal["day", "month", "year"]
# A partition's name after its table: <table>_p<its start, so written>.
_NAMED: dict[Unit, str] = {"day": "%Y%m%d", "month": "%Y%m", "year": "%Y"}
Key = Literal["created_at", "id"]


@dataclass(frozen=True)
class LocalUnique:
    """A unique index every partition has of its own (``<partition>_<suffix>``): what a
    partitioned table cannot hold unique across its partitions."""

    suffix: str
    columns: tuple[str, ...]
    where: str | None = None  # a partial index's predicate

    def statement(self, partition: str) -> str:
        where = f" WHERE {self.where}" if self.where else ""
        return (
            f'CREATE UNIQUE INDEX "{partition}_{self.suffix}" ON "{partition}"'
            f" ({', '.join(self.columns)}){where}"
        )


@dataclass(frozen=True)
class Partitioning:
    """How ``table`` is split: one partition per ``unit`` of time, by ``key``, and
    ``ahead`` partitions after the current one kept ready."""

    table: str
    unit: Unit
    ahead: int
    key: Key = "created_at"
    unique: tuple[LocalUnique, ...] = ()
    # Other tables refer to its rows: a row is never moved between partitions.
    referenced: bool = False

    @property
    def default(self) -> str:
        return f"{self.table}_default"

    def start_of(self, at: datetime) -> datetime:
        """The start of the partition that holds ``at``."""
        at = at.astimezone(UTC)
        return datetime(
            at.year,
            at.month if self.unit != "year" else 1,
            at.day if self.unit == "day" else 1,
            tzinfo=UTC,
        )

    def after(self, start: datetime) -> datetime:
        """The start of the partition after the one that starts at ``start``."""
        if self.unit == "day":
            return start + timedelta(days=1)
        if self.unit == "year":
            return datetime(start.year + 1, 1, 1, tzinfo=UTC)
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
        return f"{self.table}_p{start.strftime(_NAMED[self.unit])}"

    def start_named(self, name: str) -> datetime | None:
        """The start of the partition called ``name``; None for a name not ours."""
        pattern = _NAMED[self.unit]
        digits = len(datetime(2000, 1, 1).strftime(pattern))
        match = re.fullmatch(rf"{re.escape(self.table)}_p(\d{{{digits}}})", name)
        if match is None:
            return None
        return datetime.strptime(match[1], pattern).replace(tzinfo=UTC)

    def is_partition(self, name: str) -> bool:
        return name == self.default or self.start_named(name) is not None

    def bound(self, moment: datetime) -> datetime | uuid.UUID:
        """The value of ``key`` where ``moment`` begins: the moment itself, or the
        lowest id of its millisecond."""
        return moment if self.key == "created_at" else uuid7_floor(moment)

    def bounds(self, start: datetime) -> str:
        lower, upper = self.bound(start), self.bound(self.after(start))
        return f"FOR VALUES FROM ('{_literal(lower)}') TO ('{_literal(upper)}')"

    def create_statements(self, first: datetime, last: datetime) -> list[str]:
        """The default partition and those from the one of ``first`` to the one of
        ``last``, with their own unique indexes, for a table that has none yet (its
        migration)."""
        statements = [f'CREATE TABLE "{self.default}" PARTITION OF "{self.table}" DEFAULT']
        statements += [index.statement(self.default) for index in self.unique]
        for start in self.starts(first, last):
            statements += self.partition_statements(start)
        return statements

    def partition_statements(self, start: datetime) -> list[str]:
        """The partition that begins at ``start``, made in place, with its own unique
        indexes: for a table nobody writes to yet (its migration, a bench's database)."""
        name = self.name(start)
        made = f'CREATE TABLE "{name}" PARTITION OF "{self.table}" {self.bounds(start)}'
        return [made] + [index.statement(name) for index in self.unique]


def _literal(value: datetime | uuid.UUID) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)


PARTITIONED: dict[str, Partitioning] = {
    partitioning.table: partitioning
    for partitioning in (
        # Kept a week: a day's partition goes a week after its day ended.
        Partitioning("whatsapp_webhook_events", "day", ahead=7),
        # Kept 12 months.
        Partitioning("api_usage_log", "month", ahead=1),
        # Kept for each organisation's own period (privacy.conversation_purge), or while
        # the account is active. A year each: most reads of messages name a conversation,
        # not a time, and visit every partition (and lock each, with its indexes), so
        # their number must stay small while history is kept for years; a year whose
        # messages have all expired goes whole, and the row deletes of the purge free
        # room that the year's later messages fill. A delivery seen before and a reply
        # job's earlier answer are found by these keys.
        Partitioning(
            "messages",
            "year",
            ahead=1,
            key="id",
            referenced=True,
            unique=(
                # Whole, not partial: unique only among the ids that are set (NULLs are
                # distinct), and the partition's one index of its organisation's rows
                # (the table declares none of its own). A lookup of a delivery or a
                # status by organisation and external id then has no other index to
                # choose: a plan made while a partition had no statistics yet read every
                # message of the organisation through an index of organisation_id alone,
                # and kept doing so for as long as the connection kept the plan.
                LocalUnique("external_id", ("organisation_id", "external_id")),
                LocalUnique("reply_to_id", ("reply_to_id",), where="reply_to_id IS NOT NULL"),
            ),
        ),
    )
}


def is_partition(name: str) -> bool:
    """Whether ``name`` is a partition of one of the partitioned tables."""
    return any(partitioning.is_partition(name) for partitioning in PARTITIONED.values())


def locked_out(error: DBAPIError) -> bool:
    """Whether ``error`` is a lock not had within ``LOCK_TIMEOUT``."""
    return isinstance(error.orig, psycopg.errors.LockNotAvailable)


async def _bound_lock_waits(session: AsyncSession) -> None:
    """The rest of ``session``'s transaction waits at most ``LOCK_TIMEOUT`` for each lock
    (else ``DBAPIError``, which ``locked_out`` recognises)."""
    await session.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))


# The names of :table's partitions, the default one included (migrations run it too).
PARTITION_NAMES = text(
    "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
    " WHERE i.inhparent = CAST(:table AS regclass) ORDER BY c.relname"
)


async def partition_names(session: AsyncSession, table: str) -> list[str]:
    """The names of ``table``'s partitions, the default one included."""
    return list(await session.scalars(PARTITION_NAMES, {"table": table}))


async def _attach(session: AsyncSession, partitioning: Partitioning, start: datetime) -> bool:
    """Partition ``start`` made and attached; False when it was not made (rows of its
    range in the default partition of a table whose rows cannot move)."""
    table, name, key = partitioning.table, partitioning.name(start), partitioning.key
    lower, upper = partitioning.bound(start), partitioning.bound(partitioning.after(start))
    await _bound_lock_waits(session)
    strays = text(
        f'SELECT EXISTS (SELECT 1 FROM "{partitioning.default}"'  # noqa: S608 (our names)
        f" WHERE {key} >= :lower AND {key} < :upper)"
    )
    moving = await session.scalar(strays, {"lower": lower, "upper": upper})
    if moving and partitioning.referenced:
        # Moving a row is deleting it, which would cascade to the rows referring to it:
        # the range stays in the default partition, whose rows the purge deletes.
        log.warning("partitions.range_left_in_default", partition=name)
        return False
    await session.execute(
        text(f'CREATE TABLE "{name}" (LIKE "{table}" INCLUDING DEFAULTS INCLUDING CONSTRAINTS)')
    )
    if moving:
        await session.execute(
            text(
                f'WITH gone AS (DELETE FROM "{partitioning.default}"'  # noqa: S608
                f" WHERE {key} >= :lower AND {key} < :upper RETURNING *)"
                f' INSERT INTO "{name}" SELECT * FROM gone'
            ),
            {"lower": lower, "upper": upper},
        )
    for index in partitioning.unique:
        await session.execute(text(index.statement(name)))
    await session.execute(
        text(f'ALTER TABLE "{table}" ATTACH PARTITION "{name}" {partitioning.bounds(start)}')
    )
    return True


async def prepare(
    database: Database,
    partitioning: Partitioning,
    now: datetime,
    *,
    since: datetime | None = None,
) -> list[str]:
    """Make the partitions of ``now`` (or from ``since``'s, for rows about to be written
    with times of their own) and the ``ahead`` after it that do not exist yet, each in
    its own transaction; the names of those made. One its locks could not be had in time
    is left for the next run (logged)."""
    made: list[str] = []
    last = partitioning.start_of(now)
    for _ in range(partitioning.ahead):
        last = partitioning.after(last)
    wanted = partitioning.starts(since or now, last)
    async with database.transaction() as session:
        existing = set(await partition_names(session, partitioning.table))
    for start in wanted:
        name = partitioning.name(start)
        if name in existing:
            continue
        try:
            async with database.transaction() as session:
                attached = await _attach(session, partitioning, start)
        except DBAPIError as error:
            if not locked_out(error):
                raise
            log.warning("partitions.prepare_locked_out", partition=name)
            continue
        if attached:
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
        names = await partition_names(session, partitioning.table)
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
                counted = await detach_and_drop(session, partitioning, name)
        except DBAPIError as error:
            if not locked_out(error):
                raise
            log.warning("partitions.drop_locked_out", partition=name)
            continue
        dropped.append(Dropped(name, counted))
    return dropped


async def lock_partition(session: AsyncSession, name: str) -> None:
    """Keeps writers out of partition ``name`` until the transaction ends (readers go
    on), waiting at most ``LOCK_TIMEOUT`` for them to finish (else ``DBAPIError``, which
    ``locked_out`` recognises)."""
    await _bound_lock_waits(session)
    await session.execute(text(f'LOCK TABLE "{name}" IN SHARE MODE'))


async def detach_and_drop(
    session: AsyncSession, partitioning: Partitioning, name: str
) -> Counter[uuid.UUID]:
    """Partition ``name`` detached and dropped in the caller's transaction, locked first
    (``lock_partition``), then its rows counted per organisation: what went."""
    await lock_partition(session, name)
    rows = await session.execute(
        text(f'SELECT organisation_id, count(*) FROM "{name}" GROUP BY 1')  # noqa: S608
    )
    counted: Counter[uuid.UUID] = Counter({row[0]: int(row[1]) for row in rows})
    await session.execute(text(f'ALTER TABLE "{partitioning.table}" DETACH PARTITION "{name}"'))
    await session.execute(text(f'DROP TABLE "{name}"'))
    log.info("partitions.dropped", partition=name, rows=sum(counted.values()))
    return counted


async def analyse(database: Database, partitioning: Partitioning) -> bool:
    """Statistics of ``partitioning``'s table as a whole; False when its lock was not
    had within ``LOCK_TIMEOUT`` (a partition being attached or dropped: the next run
    does it). Autovacuum analyses each partition as its rows change but never the
    partitioned table, whose estimates are otherwise guesses however big it grows: a
    join on it, or a lookup that names no partition key. PostgreSQL analyses each
    partition again with it, a sample of each, so it runs daily."""
    try:
        async with database.transaction() as session:
            await _bound_lock_waits(session)
            await session.execute(text(f'ANALYZE "{partitioning.table}"'))
    except DBAPIError as error:
        if not locked_out(error):
            raise
        log.warning("partitions.analyse_locked_out", table=partitioning.table)
        return False
    return True
