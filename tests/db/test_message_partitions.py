"""Messages partitioned by the year of their UUIDv7 id (``db.partitions``): a message
lands in its year's partition; what is unique without the id stays unique in each
partition and a delivery stored in an earlier year is still not stored again; a range
whose messages already sit in the default partition stays there (moving a message would
cascade to what refers to it); migration 0045 moves existing messages into their years,
keeps every reference, and goes back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from cybergine.conversations.inbound import (
    ChannelAccount,
    CustomerIdentity,
    InboundContent,
    record_inbound,
)
from cybergine.conversations.models import Channel, ConversationState, Direction, Message
from cybergine.db import migrate, partitions
from cybergine.db.engine import Database
from cybergine.db.ids import uuid7, uuid7_at, uuid7_floor
from tests.support.conversations import make_attachment, make_conversation, make_message
from tests.support.databases import migrated_to
from tests.support.factories import make_organisation

MESSAGES = partitions.PARTITIONED["messages"]


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


async def where(database: Database, message_id: uuid.UUID) -> str | None:
    async with database.transaction() as session:
        found = await session.scalar(
            text("SELECT tableoid::regclass::text FROM messages WHERE id = :id"),
            {"id": message_id},
        )
        return None if found is None else str(found)


async def add_message(database: Database, organisation_id: uuid.UUID, **fields: Any) -> Message:
    async with database.transaction() as session:
        conversation = await make_conversation(session, organisation_id)
        return await make_message(session, conversation, **fields)


def test_a_year_of_messages_is_the_range_of_its_ids() -> None:
    assert MESSAGES.key == "id"
    assert MESSAGES.start_of(at(2026, 12, 31, 23, 59)) == at(2026, 1, 1)
    assert MESSAGES.after(at(2026, 1, 1)) == at(2027, 1, 1)
    assert MESSAGES.name(at(2026, 1, 1)) == "messages_p2026"
    assert MESSAGES.start_named("messages_p2026") == at(2026, 1, 1)
    assert MESSAGES.start_named("messages_p202612") is None
    # 2026-01-01T00:00Z is 1,767,225,600,000 ms since the epoch: 0x19b76daa800.
    assert str(uuid7_floor(at(2026, 1, 1))) == "019b76da-a800-0000-0000-000000000000"
    assert MESSAGES.bounds(at(2026, 1, 1)) == (
        "FOR VALUES FROM ('019b76da-a800-0000-0000-000000000000')"
        " TO ('01a2ce8b-d400-0000-0000-000000000000')"
    )
    # Every id made in the year sorts inside its bounds, the last millisecond included.
    last = at(2027, 1, 1) - timedelta(milliseconds=1)
    for moment in (at(2026, 1, 1), last):
        made = uuid7_at(moment)
        assert uuid7_floor(at(2026, 1, 1)) <= made < uuid7_floor(at(2027, 1, 1))
    assert partitions.is_partition("messages_p2026")
    assert partitions.is_partition("messages_default")
    assert not partitions.is_partition("messages")


async def test_a_message_lands_in_the_year_of_its_id(database: Database) -> None:
    shop, _ = await make_organisation(database)
    now = datetime.now(UTC)
    today = await add_message(database, shop.id)
    assert await where(database, today.id) == MESSAGES.name(MESSAGES.start_of(now))
    far = await add_message(database, shop.id, id=uuid7_at(at(2099, 5, 10)))
    assert await where(database, far.id) == MESSAGES.default

    # Its range stays in the default partition: moving the message would delete it, and
    # its attachment with it. The year after is made as usual.
    async with database.transaction() as session:
        attachment = await make_attachment(session, far)
    assert await partitions.prepare(database, MESSAGES, at(2099, 5, 15)) == ["messages_p2100"]
    assert await where(database, far.id) == MESSAGES.default
    async with database.transaction() as session:
        still = await session.scalar(
            text("SELECT count(*) FROM message_attachments WHERE id = :id"), {"id": attachment.id}
        )
    assert still == 1
    later = await add_message(database, shop.id, id=uuid7_at(at(2100, 6, 2)))
    assert await where(database, later.id) == "messages_p2100"


async def test_each_year_keeps_external_ids_and_answers_unique(database: Database) -> None:
    shop, _ = await make_organisation(database)
    first = await add_message(database, shop.id, external_id="wamid.SAME")
    with pytest.raises(IntegrityError, match="external_id"):
        await add_message(database, shop.id, external_id="wamid.SAME")
    # Another organisation may have the same id from its own channel.
    other, _ = await make_organisation(database, name="Other")
    await add_message(database, other.id, external_id="wamid.SAME")

    await add_message(database, shop.id, direction=Direction.OUTBOUND, reply_to_id=first.id)
    with pytest.raises(IntegrityError, match="reply_to_id"):
        await add_message(database, shop.id, direction=Direction.OUTBOUND, reply_to_id=first.id)


async def test_a_delivery_stored_in_an_earlier_year_is_not_stored_again(
    database: Database,
) -> None:
    shop, _ = await make_organisation(database)
    earlier = datetime.now(UTC) - timedelta(days=400)
    await partitions.prepare(database, MESSAGES, earlier)
    visitor = "visitor-of-last-year"
    async with database.transaction() as session:
        conversation = await make_conversation(
            session,
            shop.id,
            channel=Channel.WEBCHAT,
            state=ConversationState.CLOSED,
            customer=None,
        )
        await session.execute(
            text("UPDATE customers SET external_id = :visitor WHERE id = :id"),
            {"visitor": visitor, "id": conversation.customer_id},
        )
        stored = await make_message(
            session, conversation, id=uuid7_at(earlier), external_id="web:old:1"
        )
    assert await where(database, stored.id) == MESSAGES.name(MESSAGES.start_of(earlier))

    account = ChannelAccount(shop.id, Channel.WEBCHAT, assistant_id=None)

    async def deliver(external_id: str) -> uuid.UUID | None:
        content = InboundContent(
            external_id=external_id,
            type="text",
            text="Where is my order?",
            payload=None,
            sent_at=datetime.now(UTC),
        )
        async with database.transaction() as session:
            recorded = await record_inbound(
                session, account, CustomerIdentity(external_id=visitor), content
            )
        return recorded.message_id

    assert await deliver("web:old:1") is None
    new = await deliver("web:new:1")
    assert new is not None
    assert await deliver("web:new:1") is None
    async with database.transaction() as session:
        counted = await session.execute(
            text(
                "SELECT external_id, count(*) FROM messages WHERE organisation_id = :org"
                " GROUP BY 1 ORDER BY 1"
            ),
            {"org": shop.id},
        )
        assert [tuple(row) for row in counted] == [("web:new:1", 1), ("web:old:1", 1)]


# --- migration 0045 --------------------------------------------------------------------


@pytest.fixture
async def at_0044(empty_database_url: str) -> AsyncIterator[tuple[str, Database]]:
    async with migrated_to(empty_database_url, "0044") as database:
        yield empty_database_url, database


async def _foreign_keys_to_messages(database: Database) -> set[str]:
    async with database.transaction() as session:
        rows = await session.scalars(
            text(
                "SELECT conname FROM pg_constraint WHERE contype = 'f' AND conparentid = 0"
                " AND confrelid = CAST('messages' AS regclass)"
            )
        )
        return set(rows)


async def test_the_migration_moves_messages_into_their_years_and_back(
    at_0044: tuple[str, Database],
) -> None:
    url, database = at_0044
    shop, _ = await make_organisation(database)
    now = datetime.now(UTC)
    last_year = now - timedelta(days=400)
    # Raw rows: the models describe the schema at the head, not at 0044.
    async with database.transaction() as session:
        conversation = await make_conversation(session, shop.id)
    question, answer, recent = uuid7_at(last_year), uuid7_at(last_year), uuid7()
    rows = [
        (question, "inbound", "customer", None, "wamid.Q"),
        (answer, "outbound", "assistant", question, None),
        (recent, "inbound", "customer", None, "wamid.R"),
    ]
    async with database.transaction() as session:
        for row_id, direction, sender, reply_to, external_id in rows:
            await session.execute(
                text(
                    "INSERT INTO messages (id, organisation_id, conversation_id, direction,"
                    " sender, type, text, status, send_attempts, reply_to_id, external_id)"
                    " VALUES (:id, :org, :conversation, CAST(:direction AS message_direction),"
                    " CAST(:sender AS message_sender), 'text', 'hi', 'received', 0,"
                    " :reply_to, :external_id)"
                ),
                {
                    "id": row_id,
                    "org": shop.id,
                    "conversation": conversation.id,
                    "direction": direction,
                    "sender": sender,
                    "reply_to": reply_to,
                    "external_id": external_id,
                },
            )
        await session.execute(
            text(
                "INSERT INTO message_attachments (id, organisation_id, message_id, media_id,"
                " status) VALUES (:id, :org, :message, 'media-1', 'pending')"
            ),
            {"id": uuid7(), "org": shop.id, "message": question},
        )
    before = await _foreign_keys_to_messages(database)
    await database.dispose()

    migrate.upgrade(url)
    assert await where(database, question) == MESSAGES.name(MESSAGES.start_of(last_year))
    assert await where(database, recent) == MESSAGES.name(MESSAGES.start_of(now))
    assert await _foreign_keys_to_messages(database) == before
    async with database.transaction() as session:
        reply_to = await session.scalar(
            text("SELECT reply_to_id FROM messages WHERE id = :id"), {"id": answer}
        )
        kept = await session.scalar(text("SELECT count(*) FROM message_attachments"))
    assert (reply_to, kept) == (question, 1)
    await database.dispose()

    migrate.downgrade(url, "0044")
    assert await where(database, question) == "messages"
    assert await _foreign_keys_to_messages(database) == before
    with pytest.raises(IntegrityError, match="uq_messages_external_id"):
        async with database.transaction() as session:
            await session.execute(
                text("UPDATE messages SET external_id = 'wamid.Q' WHERE id = :id"),
                {"id": recent},
            )
