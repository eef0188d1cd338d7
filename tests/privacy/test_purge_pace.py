"""How the conversation purge works through its batches and makes way
(``privacy.conversation_purge``, ``privacy.purging``): every expired conversation goes,
those never written to included, however many small batches it takes; and the reply
path's waiting jobs, not every job, are what it rests for."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from cybergine.accounts import service
from cybergine.conversations.models import Conversation, Message
from cybergine.db.engine import Database
from cybergine.job_names import JobName
from cybergine.privacy import purge
from cybergine.privacy.purging import replies_waiting
from cybergine.privacy.retention_settings import RetentionSettings
from cybergine.queue import defer
from tests.support.conversations import make_conversation, make_customer, make_message
from tests.support.factories import make_organisation

NOW = datetime.now(UTC)


async def _messages(database: Database, organisation_id: uuid.UUID) -> int:
    async with database.transaction() as session:
        total = await session.scalar(
            select(func.count())
            .select_from(Message)
            .where(Message.organisation_id == organisation_id)
        )
    return int(total or 0)


async def test_every_expired_conversation_goes_batch_by_batch_and_the_active_ones_stay(
    database: Database,
) -> None:
    shop, _ = await make_organisation(database, name="Pages")
    async with database.transaction() as session:
        session.add(RetentionSettings(organisation_id=shop.id, conversation_days=30))
        expired: set[uuid.UUID] = set()
        # Several with the same last activity.
        for days_ago in (31, 40, 40, 40, 90, 400):
            at = NOW - timedelta(days=days_ago)
            conversation = await make_conversation(
                session, shop.id, last_message_at=at, created_at=at
            )
            for number in range(3):
                await make_message(session, conversation, text=f"old {number}", created_at=at)
            expired.add(conversation.id)
        # Never written to by the channels (no last activity), created long ago.
        unwritten = await make_conversation(
            session, shop.id, last_message_at=None, created_at=NOW - timedelta(days=60)
        )
        await make_message(session, unwritten, text="imported", created_at=NOW)
        expired.add(unwritten.id)
        regular = await make_customer(session, shop.id)
        active = await make_conversation(
            session, shop.id, customer=regular, last_message_at=NOW, created_at=NOW
        )
        await make_message(session, active, text="hello", created_at=NOW)
    assert await _messages(database, shop.id) == 20

    # Two rows a batch.
    done = await purge.run(database, batch_size=2)
    assert done.by_organisation()[shop.id]["conversation"]["messages"] == 19
    async with database.transaction() as session:
        left = set(
            await session.scalars(
                select(Conversation.id).where(Conversation.organisation_id == shop.id)
            )
        )
    assert left == {active.id}
    assert await _messages(database, shop.id) == 1


async def _waiting(database: Database) -> bool:
    async with database.transaction() as session:
        return await replies_waiting(session)


async def test_only_the_reply_paths_waiting_jobs_make_the_purge_rest(database: Database) -> None:
    assert await _waiting(database) is False
    async with database.transaction() as session:
        organisation = await service.create_organisation(session, name="Going")
        # Other work due now (an erasure) is background work, as the purge is.
        await service.schedule_deletion(session, organisation.id, grace=timedelta(0))
        # A reply due later does not wait yet.
        await defer(
            session,
            JobName.REPLY,
            schedule_at=datetime.now(UTC) + timedelta(hours=1),
            message_id=str(uuid.uuid4()),
        )
    assert await _waiting(database) is False
    async with database.transaction() as session:
        await defer(session, JobName.REPLY, message_id=str(uuid.uuid4()))
    assert await _waiting(database) is True
