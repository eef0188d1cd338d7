"""Time-partitioned tables (``db.partitions``): partitions are made ahead and an insert at
any time lands (in the default partition when none is made for it, moved out when one
is); retention drops the partitions wholly past the cut and deletes only the expired
rows of the one that straddles it; a lock held by someone else makes a run skip a
partition rather than wait; the migration moves existing rows; Alembic ignores the
partitions themselves."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, insert, text
from sqlalchemy.pool import NullPool

from cybergine.analytics.api_usage_models import ApiCall
from cybergine.channels.whatsapp.models import WebhookEvent
from cybergine.channels.whatsapp.tasks import WEBHOOK_EVENTS_KEPT_DAYS, prune_events
from cybergine.db import migrate, partition_tasks, partitions
from cybergine.db.engine import Database
from cybergine.db.ids import uuid7
from cybergine.db.models import metadata
from cybergine.db.urls import sqlalchemy_url
from cybergine.jobs import APP
from cybergine.privacy.purgers import AgePurger, Pace, Removal
from cybergine.privacy.retention import MAXIMUM_AGE, Retention
from cybergine.queue import defer
from cybergine.settings import Settings
from tests.support.conversations import make_whatsapp_number
from tests.support.databases import migrated_to
from tests.support.factories import make_organisation
from tests.support.jobs import run_jobs

EVENTS = partitions.PARTITIONED["whatsapp_webhook_events"]
CALLS = partitions.PARTITIONED["api_usage_log"]


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


async def partitions_of(database: Database, table: str) -> set[str]:
    async with database.transaction() as session:
        return set(await partitions.partition_names(session, table))


async def where(database: Database, table: str, row_id: uuid.UUID) -> str | None:
    async with database.transaction() as session:
        found = await session.scalar(
            text(f"SELECT tableoid::regclass::text FROM {table} WHERE id = :id"),
            {"id": row_id},
        )
        return None if found is None else str(found)


async def add_call(database: Database, organisation_id: uuid.UUID, when: datetime) -> uuid.UUID:
    row_id = uuid7()
    async with database.transaction() as session:
        await session.execute(
            insert(ApiCall).values(
                id=row_id,
                organisation_id=organisation_id,
                api_key_id=uuid.uuid4(),
                method="GET",
                route="/api/v1/conversations",
                status=200,
                latency_ms=3.0,
                created_at=when,
            )
        )
    return row_id


async def add_event(
    database: Database, organisation_id: uuid.UUID, number_id: uuid.UUID, when: datetime
) -> uuid.UUID:
    row_id = uuid7()
    async with database.transaction() as session:
        await session.execute(
            insert(WebhookEvent).values(
                id=row_id,
                organisation_id=organisation_id,
                whatsapp_number_id=number_id,
                field="messages",
                value={},
                messages=0,
                statuses=0,
                created_at=when,
            )
        )
    return row_id


@pytest.fixture
async def number(database: Database) -> tuple[uuid.UUID, uuid.UUID]:
    shop, _ = await make_organisation(database)
    async with database.transaction() as session:
        made = await make_whatsapp_number(session, shop.id)
        return shop.id, made.id


# --- the declaration ------------------------------------------------------------------


def test_the_partitioned_models_are_the_partitioned_tables() -> None:
    declared = {
        name
        for name, table in metadata.tables.items()
        if table.dialect_options["postgresql"].get("partition_by")
    }
    assert declared == set(partitions.PARTITIONED)
    for name in declared:
        key = [column.name for column in metadata.tables[name].primary_key]
        # The partition key is part of every unique key of a partitioned table.
        expected = ["id"] if partitions.PARTITIONED[name].key == "id" else ["id", "created_at"]
        assert key == expected, name
        assert metadata.tables[name].dialect_options["postgresql"]["partition_by"] == (
            f"RANGE ({partitions.PARTITIONED[name].key})"
        )


def test_partition_names_and_ranges() -> None:
    assert EVENTS.name(at(2026, 12, 31)) == "whatsapp_webhook_events_p20261231"
    assert EVENTS.after(at(2026, 12, 31)) == at(2027, 1, 1)
    assert CALLS.start_of(at(2026, 12, 31, 23, 59)) == at(2026, 12, 1)
    assert CALLS.after(at(2026, 12, 1)) == at(2027, 1, 1)
    assert CALLS.starts(at(2026, 11, 30), at(2027, 2, 1)) == [
        at(2026, 11, 1),
        at(2026, 12, 1),
        at(2027, 1, 1),
        at(2027, 2, 1),
    ]
    assert CALLS.start_named("api_usage_log_p202612") == at(2026, 12, 1)
    assert CALLS.start_named("api_usage_log_default") is None
    assert CALLS.start_named("api_usage_log_p20261201") is None
    assert partitions.is_partition("api_usage_log_default")
    assert not partitions.is_partition("api_usage_log")
    assert not partitions.is_partition("conversations_p202612")


def test_partitions_are_made_ahead_by_a_periodic_job_of_the_app() -> None:
    periodic = {name for name, _ in APP.periodic_registry.periodic_tasks}
    assert "maintenance:prepare_partitions" in periodic


# --- made ahead, and an insert always lands --------------------------------------------


async def test_the_current_partitions_and_those_ahead_exist_and_are_made_once(
    database: Database,
) -> None:
    now = datetime.now(UTC)
    for partitioning in (EVENTS, CALLS):
        existing = await partitions_of(database, partitioning.table)
        ahead = partitioning.start_of(now)
        for _ in range(partitioning.ahead):
            ahead = partitioning.after(ahead)
        wanted = {partitioning.name(s) for s in partitioning.starts(now, ahead)}
        assert wanted | {partitioning.default} <= existing
        assert await partitions.prepare(database, partitioning, now) == []

    later = now + timedelta(days=40)
    made = await partitions.prepare(database, EVENTS, later)
    first = EVENTS.start_of(later)
    assert made == [EVENTS.name(first + timedelta(days=d)) for d in range(EVENTS.ahead + 1)]
    assert set(made) <= await partitions_of(database, EVENTS.table)
    assert await partitions.prepare(database, EVENTS, later) == []


async def test_an_insert_far_off_lands_in_the_default_partition_and_moves_out_later(
    database: Database,
) -> None:
    shop, _ = await make_organisation(database)
    future = await add_call(database, shop.id, at(2099, 5, 10))
    past = await add_call(database, shop.id, at(1990, 1, 1))
    assert await where(database, CALLS.table, future) == CALLS.default
    assert await where(database, CALLS.table, past) == CALLS.default

    made = await partitions.prepare(database, CALLS, at(2099, 5, 15))
    assert made == ["api_usage_log_p209905", "api_usage_log_p209906"]
    assert await where(database, CALLS.table, future) == "api_usage_log_p209905"
    assert await where(database, CALLS.table, past) == CALLS.default

    # A row of today lands in today's partition, made by the migration.
    now = datetime.now(UTC)
    today = await add_call(database, shop.id, now)
    assert await where(database, CALLS.table, today) == CALLS.name(CALLS.start_of(now))


# --- retention drops partitions ------------------------------------------------------


async def test_the_usage_log_purge_drops_expired_months_and_deletes_only_expired_rows(
    database: Database,
) -> None:
    first, _ = await make_organisation(database, name="First")
    second, _ = await make_organisation(database, name="Second")
    as_of = at(2020, 6, 15, 12)
    cutoff = as_of - MAXIMUM_AGE[Retention.USAGE_LOG]  # 2019-06-16 12:00
    assert await partitions.prepare(database, CALLS, at(2019, 5, 20)) == [
        "api_usage_log_p201905",
        "api_usage_log_p201906",
    ]
    for when in (at(2019, 5, 3), at(2019, 5, 31, 23)):
        await add_call(database, first.id, when)
    await add_call(database, second.id, at(2019, 5, 10))
    await add_call(database, first.id, cutoff - timedelta(hours=1))  # the straddling month
    kept = await add_call(database, first.id, cutoff + timedelta(hours=1))
    await add_call(database, second.id, at(2018, 1, 1))  # the default partition
    recent = await add_call(database, second.id, datetime.now(UTC))

    # The row deletes reach only the partitions that hold rows older than the cut.
    async with database.transaction() as session:
        plan = "\n".join(
            await session.scalars(
                text("EXPLAIN DELETE FROM api_usage_log WHERE created_at < :cutoff"),
                {"cutoff": cutoff},
            )
        )
    assert "api_usage_log_p201906" in plan
    assert CALLS.default in plan
    assert CALLS.name(CALLS.start_of(datetime.now(UTC))) not in plan

    purger = AgePurger(Retention.USAGE_LOG, tables=lambda: [ApiCall.__table__])
    expected = {
        Removal(first.id, Retention.USAGE_LOG, CALLS.table, 3),
        Removal(second.id, Retention.USAGE_LOG, CALLS.table, 2),
    }
    assert set(await purger.due(database, as_of)) == expected
    assert set(await purger.purge(database, as_of, batch_size=1, pace=Pace(0, 0))) == expected
    assert await purger.purge(database, as_of, batch_size=1, pace=Pace(0, 0)) == []

    left = await partitions_of(database, CALLS.table)
    assert "api_usage_log_p201905" not in left
    assert "api_usage_log_p201906" in left
    assert await where(database, CALLS.table, kept) == "api_usage_log_p201906"
    assert await where(database, CALLS.table, recent) is not None
    async with database.transaction() as session:
        assert await session.scalar(text("SELECT count(*) FROM api_usage_log")) == 2


async def test_webhook_events_go_a_day_at_a_time_a_week_after_their_day(
    database: Database, number: tuple[uuid.UUID, uuid.UUID]
) -> None:
    shop_id, number_id = number
    now = at(2020, 3, 20, 12)
    cutoff = now - timedelta(days=WEBHOOK_EVENTS_KEPT_DAYS)  # 2020-03-13 12:00
    made = await partitions.prepare(database, EVENTS, at(2020, 3, 11))
    assert made[:3] == [f"whatsapp_webhook_events_p202003{day}" for day in (11, 12, 13)]
    await add_event(database, shop_id, number_id, at(2020, 3, 12, 10))
    await add_event(database, shop_id, number_id, at(2020, 3, 11, 23))
    await add_event(database, shop_id, number_id, cutoff - timedelta(hours=4))
    kept = [
        await add_event(database, shop_id, number_id, when)
        for when in (cutoff + timedelta(hours=3), at(2020, 3, 15))
    ]

    assert await prune_events(database, now) == 3
    left = await partitions_of(database, EVENTS.table)
    assert {"whatsapp_webhook_events_p20200311", "whatsapp_webhook_events_p20200312"}.isdisjoint(
        left
    )
    assert "whatsapp_webhook_events_p20200313" in left
    assert [await where(database, EVENTS.table, row) for row in kept] == [
        "whatsapp_webhook_events_p20200313",
        "whatsapp_webhook_events_p20200315",
    ]
    assert await prune_events(database, now) == 0


async def test_a_partition_someone_reads_is_skipped_not_waited_for(
    database: Database, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(partitions, "LOCK_TIMEOUT", "100ms")
    shop, _ = await make_organisation(database)
    await partitions.prepare(database, replace(CALLS, ahead=0), at(2019, 1, 5))
    await add_call(database, shop.id, at(2019, 1, 5))
    reader = Database(database_url, pool_size=1)
    try:
        async with reader.transaction() as session:
            await session.execute(text("SELECT count(*) FROM api_usage_log_p201901"))
            assert await partitions.drop_expired(database, CALLS, at(2020, 1, 1)) == []
        assert "api_usage_log_p201901" in await partitions_of(database, CALLS.table)
    finally:
        await reader.dispose()
    (dropped,) = await partitions.drop_expired(database, CALLS, at(2020, 1, 1))
    assert dropped.name == "api_usage_log_p201901"
    assert dict(dropped.rows) == {shop.id: 1}


# --- statistics of each table as a whole --------------------------------------------


async def _whole_table_statistics(database: Database, table: str) -> tuple[float, int]:
    """The table's estimated rows (-1: never analysed) and its columns with statistics of
    the whole table (of all its partitions together)."""
    async with database.transaction() as session:
        row = await session.execute(
            text(
                "SELECT c.reltuples, (SELECT count(*) FROM pg_statistic s"
                "  WHERE s.starelid = c.oid AND s.stainherit)"
                " FROM pg_class c WHERE c.oid = CAST(:table AS regclass)"
            ),
            {"table": table},
        )
        reltuples, columns = row.one()
        return float(reltuples), int(columns)


async def test_each_partitioned_table_is_analysed_as_a_whole_by_a_daily_job(
    database: Database, settings: Settings
) -> None:
    """Autovacuum analyses each partition, never the partitioned table, whose estimates
    stay guesses however big it grows (tests/conversations/test_reply_plans.py)."""
    shop, _ = await make_organisation(database)
    now = datetime.now(UTC)
    for days in range(3):
        await add_call(database, shop.id, now - timedelta(days=days))
    tables = [partitioning.table for partitioning in partitions.PARTITIONED.values()]
    for table in tables:
        assert await _whole_table_statistics(database, table) == (-1, 0), table
    assert "maintenance:analyse_partitioned" in {
        name for name, _ in APP.periodic_registry.periodic_tasks
    }
    async with database.transaction() as session:
        await defer(session, partition_tasks.analyse_partitioned, timestamp=0)
    await run_jobs(database, settings)
    for table in tables:
        reltuples, columns = await _whole_table_statistics(database, table)
        assert reltuples >= 0, table
        assert columns > 0 or reltuples == 0, table
    assert await _whole_table_statistics(database, CALLS.table) >= (3, 1)


async def test_a_table_someone_alters_is_analysed_at_the_next_run_not_waited_for(
    database: Database, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(partitions, "LOCK_TIMEOUT", "100ms")
    holder = Database(database_url, pool_size=1)
    try:
        async with holder.transaction() as session:  # as a partition being attached
            await session.execute(text("LOCK TABLE api_usage_log IN SHARE UPDATE EXCLUSIVE MODE"))
            assert await partitions.analyse(database, CALLS) is False
    finally:
        await holder.dispose()
    assert await partitions.analyse(database, CALLS) is True
    assert (await _whole_table_statistics(database, CALLS.table))[0] >= 0


# --- the schema and the migration ---------------------------------------------------


def _diff(url: str, include_object: Any) -> list[Any]:
    engine = create_engine(sqlalchemy_url(url), poolclass=NullPool)
    with engine.connect() as conn:
        context = MigrationContext.configure(
            conn, opts={"include_object": include_object, "compare_type": True}
        )
        diff = list(compare_metadata(context, metadata))
    engine.dispose()
    return diff


def test_alembic_ignores_the_partitions_and_only_them(database_url: str) -> None:
    def only_procrastinate(obj: Any, name: str | None, type_: str, *args: Any) -> bool:
        return not (type_ == "table" and (name or "").startswith("procrastinate_"))

    changes = _diff(database_url, only_procrastinate)
    assert {change[0] for change in changes} == {"remove_table", "remove_index", "remove_fk"}
    unfiltered = {change[1].name for change in changes if change[0] == "remove_table"}
    assert {change[1].table.name for change in changes if change[0] == "remove_index"} == (
        unfiltered
    )
    # A foreign key to messages is also one to each of its partitions.
    assert {change[1].referred_table.name for change in changes if change[0] == "remove_fk"} == {
        name for name in unfiltered if name.startswith("messages_")
    }
    assert CALLS.default in unfiltered
    assert EVENTS.default in unfiltered
    assert all(partitions.is_partition(name) for name in unfiltered)
    assert _diff(database_url, migrate.include_object) == []


@pytest.fixture
async def at_0035(empty_database_url: str) -> AsyncIterator[tuple[str, Database]]:
    async with migrated_to(empty_database_url, "0035") as database:
        yield empty_database_url, database


async def _raw_insert(database: Database, table: str, rows: list[dict[str, Any]]) -> None:
    columns = list(rows[0])
    names, values = ", ".join(columns), ", ".join(f":{c}" for c in columns)
    async with database.transaction() as session:
        await session.execute(text(f"INSERT INTO {table} ({names}) VALUES ({values})"), rows)


async def _primary_key(database: Database, table: str) -> list[str]:
    async with database.transaction() as session:
        rows = await session.scalars(
            text(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a"
                " ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)"
                " WHERE i.indrelid = CAST(:t AS regclass) AND i.indisprimary ORDER BY a.attnum"
            ),
            {"t": table},
        )
        return list(rows)


async def test_the_migration_moves_existing_rows_into_partitions_and_back(
    at_0035: tuple[str, Database],
) -> None:
    url, database = at_0035
    shop, _ = await make_organisation(database)
    async with database.transaction() as session:
        number_id = (await make_whatsapp_number(session, shop.id)).id
    now = datetime.now(UTC)
    event_times = [now - timedelta(hours=2), now - timedelta(days=3), now - timedelta(days=30)]
    call_times = [now, now - timedelta(days=62), now - timedelta(days=800)]
    events = [
        {
            "id": uuid7(),
            "organisation_id": shop.id,
            "whatsapp_number_id": number_id,
            "field": "messages",
            "value": "{}",
            "messages": 1,
            "statuses": 0,
            "created_at": when,
        }
        for when in event_times
    ]
    calls = [
        {
            "id": uuid7(),
            "organisation_id": shop.id,
            "api_key_id": uuid.uuid4(),
            "method": "GET",
            "route": "/api/v1/conversations",
            "status": 200,
            "latency_ms": 1.5,
            "created_at": when,
        }
        for when in call_times
    ]
    await _raw_insert(database, EVENTS.table, events)
    await _raw_insert(database, CALLS.table, calls)
    assert await _primary_key(database, CALLS.table) == ["id"]
    await database.dispose()

    migrate.upgrade(url)
    assert [await where(database, EVENTS.table, row["id"]) for row in events] == [
        EVENTS.name(EVENTS.start_of(event_times[0])),
        EVENTS.name(EVENTS.start_of(event_times[1])),
        EVENTS.default,  # older than the week kept: the next prune removes it
    ]
    assert [await where(database, CALLS.table, row["id"]) for row in calls] == [
        CALLS.name(CALLS.start_of(call_times[0])),
        CALLS.name(CALLS.start_of(call_times[1])),
        CALLS.default,
    ]
    for table in (EVENTS.table, CALLS.table):
        assert await _primary_key(database, table) == ["id", "created_at"]
    assert _diff(url, migrate.include_object) == []
    await database.dispose()

    migrate.downgrade(url, "0035")
    for table, rows in ((EVENTS.table, events), (CALLS.table, calls)):
        assert [await where(database, table, row["id"]) for row in rows] == [table] * 3
        assert await _primary_key(database, table) == ["id"]
