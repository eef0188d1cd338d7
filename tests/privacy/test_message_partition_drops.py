"""Conversation history's years dropped whole (``conversation_purge.drop_expired_partitions``):
a year of messages goes as a partition once every message in it belongs to a conversation
past its organisation's period, with what refers into it, and counts as the batches would
have; a year holding a message still kept stays, and the batches take its expired rows;
a conversation that came back to life keeps its old years; a year whose conversation
someone holds is left for the next run."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, text

from cybergine.conversations.models import Attachment, Conversation, Direction, Message
from cybergine.db import partitions
from cybergine.db.engine import Database
from cybergine.db.ids import uuid7_at
from cybergine.privacy import purge
from cybergine.privacy.conversation_purge import drop_expired_partitions
from cybergine.privacy.retention_settings import RetentionSettings
from tests.support.conversations import make_attachment, make_conversation, make_message
from tests.support.factories import make_organisation

MESSAGES = partitions.PARTITIONED["messages"]
EARLIER, LATER = "messages_p2020", "messages_p2021"


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


async def _period(database: Database, organisation_id: uuid.UUID, days: int | None) -> None:
    async with database.transaction() as session:
        session.add(RetentionSettings(organisation_id=organisation_id, conversation_days=days))


async def _history(
    database: Database, organisation_id: uuid.UUID, times: list[datetime], *, last: datetime
) -> tuple[Conversation, list[Message]]:
    """A conversation whose messages were written at ``times`` (ids of those times, a
    question and its answer in turn, the first with an attachment), last active ``last``."""
    async with database.transaction() as session:
        conversation = await make_conversation(
            session, organisation_id, created_at=times[0], last_message_at=last
        )
        written: list[Message] = []
        for number, moment in enumerate(times):
            answer = number % 2 == 1
            written.append(
                await make_message(
                    session,
                    conversation,
                    id=uuid7_at(moment),
                    created_at=moment,
                    direction=Direction.OUTBOUND if answer else Direction.INBOUND,
                    reply_to_id=written[-1].id if answer else None,
                )
            )
        await make_attachment(session, written[0])
        return conversation, written


async def _partitions(database: Database) -> set[str]:
    async with database.transaction() as session:
        return set(await partitions.partition_names(session, MESSAGES.table))


async def _count(database: Database, model: type[Message] | type[Attachment]) -> int:
    async with database.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def test_a_year_whose_messages_all_expired_goes_whole_and_counts_as_rows_would(
    database: Database,
) -> None:
    await partitions.prepare(database, MESSAGES, at(2020, 1, 5))  # 2020 and 2021
    shop, _ = await make_organisation(database, name="Short Memory")
    other, _ = await make_organisation(database, name="Longer Memory")
    keeper, _ = await make_organisation(database, name="Keeps Everything")
    await _period(database, shop.id, 30)
    await _period(database, other.id, 365)
    await _period(database, keeper.id, None)

    # The shop's answer to its question of New Year's Eve came on 1 January: it refers
    # into 2020 from 2021, which the keeper's message keeps.
    await _history(
        database,
        shop.id,
        [at(2020, 12, 31, 23, 50), at(2021, 1, 1, 0, 5)],
        last=at(2021, 1, 1, 0, 5),
    )
    await _history(
        database,
        other.id,
        [at(2020, 1, 10), at(2020, 1, 11), at(2020, 1, 12)],
        last=at(2020, 1, 12),
    )
    await _history(database, keeper.id, [at(2021, 2, 20)], last=at(2021, 2, 20))

    due = await purge.run(database, dry_run=True)
    done = await purge.run(database)
    assert done.by_organisation() == due.by_organisation()
    removed = done.by_organisation()
    assert removed[shop.id]["conversation"]["messages"] == 2
    assert removed[other.id]["conversation"]["messages"] == 3
    for organisation_id in (shop.id, other.id):
        assert removed[organisation_id]["conversation"]["conversations"] == 1
        assert removed[organisation_id]["conversation"]["message_attachments"] == 1
    assert keeper.id not in done.by_organisation()

    # 2020 went as a partition; 2021 stays with the keeper's message only.
    left_partitions = await _partitions(database)
    assert EARLIER not in left_partitions
    assert LATER in left_partitions
    async with database.transaction() as session:
        left = list(await session.execute(text(f'SELECT organisation_id FROM "{LATER}"')))
    assert [row[0] for row in left] == [keeper.id]
    assert await _count(database, Message) == 1
    assert await _count(database, Attachment) == 1
    assert (await purge.run(database)).removals == []


async def test_a_conversation_that_came_back_to_life_keeps_its_old_years(
    database: Database,
) -> None:
    await partitions.prepare(database, MESSAGES, at(2020, 1, 5))
    shop, _ = await make_organisation(database)
    await _period(database, shop.id, 30)
    # Written in 2020, and again today: nothing of it has expired.
    await _history(database, shop.id, [at(2020, 1, 20), at(2020, 1, 21)], last=datetime.now(UTC))
    assert (await purge.run(database)).removals == []
    assert EARLIER in await _partitions(database)
    assert await _count(database, Message) == 2


async def test_a_year_whose_conversation_someone_holds_is_left_for_the_next_run(
    database: Database, database_url: str
) -> None:
    await partitions.prepare(database, MESSAGES, at(2020, 1, 5))
    shop, _ = await make_organisation(database)
    await _period(database, shop.id, 30)
    conversation, _ = await _history(
        database, shop.id, [at(2020, 1, 20), at(2020, 1, 21)], last=at(2020, 1, 21)
    )
    holder = Database(database_url, pool_size=1)
    try:
        async with holder.transaction() as session:
            await session.execute(
                text("SELECT 1 FROM conversations WHERE id = :id FOR UPDATE"),
                {"id": conversation.id},
            )
            cutoff = datetime.now(UTC) - timedelta(days=30)
            assert await drop_expired_partitions(database, [(shop.id, cutoff)]) == {}
        assert EARLIER in await _partitions(database)
    finally:
        await holder.dispose()
    done = await purge.run(database)
    assert done.by_organisation()[shop.id]["conversation"]["messages"] == 2
    assert EARLIER not in await _partitions(database)
