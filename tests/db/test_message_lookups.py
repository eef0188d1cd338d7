"""A delivery seen before and a status's message are found by (organisation, external id)
through each partition's unique index of those two columns, the only index of a
partition that leads with the organisation: so even a plan made while a partition has no
statistics (a new database, a new year), and kept by a connection for as long as it
lives, reads one entry per partition instead of every message of the organisation.
Migration 0046 made the index whole and dropped the index of organisation_id alone."""

from __future__ import annotations

import base64
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from cybergine.db import migrate, partitions
from cybergine.db.engine import Database
from cybergine.db.ids import uuid7
from tests.support.conversations import make_conversation, make_message
from tests.support.databases import migrated_to
from tests.support.factories import make_organisation
from tests.support.plans import generic_scans

MESSAGES = partitions.PARTITIONED["messages"]
# The lookups of cybergine_record_inbound and cybergine_whatsapp_ingest, as they stand
# in their functions, whose plans are generic (plan_cache_mode).
LOOKUPS = {
    "delivery seen before": "SELECT 1 FROM messages WHERE organisation_id = :organisation"
    " AND external_id = :external_id",
    # once by Meta's id, once by its keyed hash (an erased customer's)
    "status's message": "SELECT id FROM messages WHERE organisation_id = :organisation"
    " AND external_id = :external_id AND direction = 'outbound' LIMIT 1",
}


def _wamid(n: int) -> str:
    """As long as Meta's: base64 of a structure holding the customer's number."""
    return "wamid." + base64.b64encode(f"15551234567-{n:040d}".encode()).decode()


async def test_a_lookup_by_external_id_reads_its_index_before_any_statistics(
    database: Database,
) -> None:
    shop, _ = await make_organisation(database)
    async with database.transaction() as session:
        conversation = await make_conversation(session, shop.id)
        for n in range(200):
            await make_message(session, conversation, external_id=_wamid(n))
    current = MESSAGES.name(MESSAGES.start_of(datetime.now(UTC)))
    async with database.transaction() as session:
        reltuples = await session.scalar(
            text("SELECT reltuples FROM pg_class WHERE relname = :name"), {"name": current}
        )
        assert reltuples == -1, "the premise: the partition was never analysed"
        for name, query in LOOKUPS.items():
            scans = await generic_scans(
                session, query, {"organisation": f"'{shop.id}'", "external_id": f"'{_wamid(7)}'"}
            )
            partitions_read = {relation for _, relation, _ in scans}
            assert current in partitions_read, name
            for node, relation, index in scans:
                assert index == f"{relation}_external_id", (name, node, relation, index)


async def test_a_partition_has_one_index_that_leads_with_the_organisation(
    database: Database,
) -> None:
    async with database.transaction() as session:
        names = await partitions.partition_names(session, "messages")
        rows = await session.execute(
            text(
                "SELECT tablename, indexname FROM pg_indexes WHERE tablename = ANY(:names)"
                " AND indexdef LIKE '%USING btree (organisation_id%'"
            ),
            {"names": names},
        )
        leading = sorted(tuple(row) for row in rows)
    assert len(names) >= 3  # this year's, the next, the default
    assert leading == sorted((name, f"{name}_external_id") for name in names)


@pytest.fixture
async def at_0045(empty_database_url: str) -> AsyncIterator[tuple[str, Database]]:
    async with migrated_to(empty_database_url, "0045") as database:
        yield empty_database_url, database


async def _indexes(database: Database, table: str) -> dict[str, str]:
    async with database.transaction() as session:
        rows = await session.execute(
            text(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = :table"
                " AND indexdef LIKE '%organisation_id%'"
            ),
            {"table": table},
        )
        return {str(name): str(definition) for name, definition in rows.tuples()}


async def _insert(database: Database, organisation: uuid.UUID, external_id: str | None) -> None:
    # Raw rows: the models describe the schema at the head.
    async with database.transaction() as session:
        conversation = await make_conversation(session, organisation)
        await session.execute(
            text(
                "INSERT INTO messages (id, organisation_id, conversation_id, direction,"
                " sender, type, text, status, send_attempts, external_id)"
                " VALUES (:id, :org, :conversation, 'inbound', 'customer', 'text', 'hi',"
                " 'received', 0, :external_id)"
            ),
            {
                "id": uuid7(),
                "org": organisation,
                "conversation": conversation.id,
                "external_id": external_id,
            },
        )


async def test_migration_0046_keeps_external_ids_unique_and_goes_back(
    at_0045: tuple[str, Database],
) -> None:
    url, database = at_0045
    current = MESSAGES.name(MESSAGES.start_of(datetime.now(UTC)))
    shop, _ = await make_organisation(database)
    other, _ = await make_organisation(database, name="Other")
    for organisation, external_id in ((shop.id, "wamid.A"), (shop.id, None), (other.id, "wamid.A")):
        await _insert(database, organisation, external_id)
    await database.dispose()

    migrate.upgrade(url, "0046")
    assert await _indexes(database, current) == {
        f"{current}_external_id": f"CREATE UNIQUE INDEX {current}_external_id ON"
        f" public.{current} USING btree (organisation_id, external_id)"
    }
    assert await _indexes(database, "messages") == {}
    await _insert(database, shop.id, None)  # ids not set are not one another's duplicates
    await _insert(database, other.id, "wamid.B")
    with pytest.raises(IntegrityError, match=f"{current}_external_id"):
        await _insert(database, shop.id, "wamid.A")
    await database.dispose()

    migrate.downgrade(url, "0045")
    assert await _indexes(database, current) == {
        f"{current}_external_id": f"CREATE UNIQUE INDEX {current}_external_id ON"
        f" public.{current} USING btree (organisation_id, external_id)"
        " WHERE (external_id IS NOT NULL)",
        f"{current}_organisation_id_idx": f"CREATE INDEX {current}_organisation_id_idx ON"
        f" public.{current} USING btree (organisation_id)",
    }
    with pytest.raises(IntegrityError, match=f"{current}_external_id"):
        await _insert(database, other.id, "wamid.B")
