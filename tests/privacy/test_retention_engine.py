"""The retention engine (policy §11): every class has a purger and every table is covered;
conversation history goes after the organisation's period, in batches that skip what
the reply path holds, with one audit entry per organisation; a second run removes
nothing; overdue organisations are erased; age-based classes and the audit trail keep
their maximum ages, and the trail still verifies."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Column, DateTime, MetaData, Table, func, select, text
from sqlalchemy.dialects.postgresql import UUID

from cybergine.accounts.models import Organisation
from cybergine.accounts.service import organisations
from cybergine.channels.whatsapp.models import WebhookEvent
from cybergine.conversations.models import (
    Attachment,
    Conversation,
    ConversationState,
    Customer,
    Message,
)
from cybergine.db.base import Base
from cybergine.db.engine import Database
from cybergine.db.ids import uuid7
from cybergine.db.tenancy import TenantScope
from cybergine.job_names import JobName
from cybergine.jobs import APP
from cybergine.privacy import audit, purge, purgers
from cybergine.privacy.audit import AuditEvent
from cybergine.privacy.purgers import PURGERS, AgePurger, OperationalPurger, Pace, Removal
from cybergine.privacy.retention import MAXIMUM_AGE, Retention
from cybergine.privacy.retention_settings import RetentionSettings
from tests.support.conversations import (
    make_attachment,
    make_conversation,
    make_customer,
    make_message,
    make_whatsapp_number,
)
from tests.support.factories import make_organisation

NOW = datetime.now(UTC)
PERIOD_DAYS = 30


# --- nothing can be added and forgotten -----------------------------------------------


def test_every_retention_class_has_a_purger_that_serves_it() -> None:
    assert set(PURGERS) == set(Retention)
    for retention, purger in PURGERS.items():
        assert retention in purger.serves, retention


def test_every_table_is_covered_by_its_class_purger() -> None:
    uncovered = [
        f"{mapper.local_table.name} ({mapper.class_.__retention__})"
        for mapper in Base.registry.mappers
        if not PURGERS[mapper.class_.__retention__].covers(mapper.local_table)  # type: ignore[arg-type]
    ]
    assert uncovered == [], "no purger removes the rows of: " + ", ".join(uncovered)


def test_a_purger_does_not_claim_a_table_it_does_not_know() -> None:
    stranger = Table("stranger", MetaData(), Column("id", UUID, primary_key=True))
    for purger in set(PURGERS.values()):
        assert purger.covers(stranger) is None, purger


def test_rows_pruned_elsewhere_are_pruned_by_periodic_jobs_of_the_app() -> None:
    periodic = {name for name, _ in APP.periodic_registry.periodic_tasks}
    named = [pruned.job for pruned in OperationalPurger.pruned_by.values()]
    named += [pruned.job for pruned in purgers.AccountPurger.pruned_elsewhere.values()]
    assert named
    assert [job for job in named if job not in periodic] == []
    assert "privacy:purge_expired_data" in periodic


# --- conversation history -------------------------------------------------------------


async def _set_period(database: Database, organisation_id: uuid.UUID, days: int | None) -> None:
    async with database.transaction() as session:
        session.add(RetentionSettings(organisation_id=organisation_id, conversation_days=days))


async def _conversation(
    database: Database,
    organisation_id: uuid.UUID,
    *,
    days_ago: int,
    messages: int = 2,
    customer: Customer | None = None,
    state: ConversationState = ConversationState.BOT,
) -> Conversation:
    """A conversation whose last activity was ``days_ago``, its messages that old."""
    at = NOW - timedelta(days=days_ago)
    async with database.transaction() as session:
        if customer is None:
            customer = await make_customer(session, organisation_id, created_at=at, updated_at=at)
        conversation = await make_conversation(
            session,
            organisation_id,
            customer=customer,
            last_message_at=at,
            created_at=at,
            state=state,
        )
        for number in range(messages):
            message = await make_message(
                session, conversation, text=f"message {number}", created_at=at
            )
            if number == 0:
                await make_attachment(session, message)
        return conversation


async def _count(database: Database, model: Any, organisation_id: uuid.UUID) -> int:
    async with database.transaction() as session:
        total = await session.scalar(
            select(func.count()).select_from(model).where(model.organisation_id == organisation_id)
        )
        return int(total or 0)


async def _entries(database: Database, action: str = purge.AUDIT_ACTION) -> list[AuditEvent]:
    async with database.transaction() as session:
        found = await session.scalars(
            select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.seq)
        )
        return list(found)


async def _vacuums_waiting(database: Database) -> int:
    async with database.transaction() as session:
        waiting: int = await session.scalar(
            text("SELECT count(*) FROM procrastinate_jobs WHERE task_name = :task"),
            {"task": JobName.VACUUM_ERASED.value},
        )
    return waiting


async def test_conversations_past_the_period_go_with_everything_in_them(
    database: Database,
) -> None:
    shop, _ = await make_organisation(database, name="Short Memory")
    keeper, _ = await make_organisation(database, name="Keeps Everything")
    await _set_period(database, shop.id, PERIOD_DAYS)

    old = await _conversation(database, shop.id, days_ago=40, messages=3)
    young = await _conversation(database, shop.id, days_ago=5)
    async with database.transaction() as session:
        regular = await session.get(Customer, young.customer_id)
    # One customer, an old conversation and a young one: the customer stays.
    await _conversation(
        database, shop.id, days_ago=45, customer=regular, state=ConversationState.CLOSED
    )
    never_expires = await _conversation(database, keeper.id, days_ago=4000)
    async with database.transaction() as session:
        number = await make_whatsapp_number(session, shop.id)
        for age in (40, 1):
            event = WebhookEvent(
                whatsapp_number_id=number.id,
                field="messages",
                value={"n": age},
                created_at=NOW - timedelta(days=age),
            )
            TenantScope(session, shop.id).add(event)

    due = await purge.run(database, dry_run=True)
    assert await _vacuums_waiting(database) == 0
    expected = {
        shop.id: {
            "conversation": {
                "conversations": 2,
                "messages": 5,
                "message_attachments": 2,
                "customers": 1,
                "whatsapp_webhook_events": 1,
            }
        }
    }
    assert due.by_organisation() == expected
    assert await _count(database, Message, shop.id) == 7  # a dry run removes nothing
    assert f"organisation {shop.id} (Short Memory): conversation: would remove" in "\n".join(
        due.lines()
    )

    done = await purge.run(database, batch_size=2)
    assert done.by_organisation() == expected
    # The dead rows leave the disk within minutes: the vacuum job is waiting (one).
    assert await _vacuums_waiting(database) == 1

    async with database.transaction() as session:
        left = set(await session.scalars(select(Conversation.id)))
        customers = set(await session.scalars(select(Customer.id)))
        events = list(await session.scalars(select(WebhookEvent.value)))
    assert left == {young.id, never_expires.id}
    assert old.customer_id not in customers
    assert young.customer_id in customers
    assert events == [{"n": 1}]
    assert await _count(database, Message, shop.id) == 2
    assert await _count(database, Attachment, shop.id) == 1
    assert await _count(database, Message, keeper.id) == 2

    # One entry for the organisation, with the counts; the trail still verifies.
    (entry,) = await _entries(database)
    assert entry.organisation_id == shop.id
    assert entry.details["removed"] == expected[shop.id]
    async with database.transaction() as session:
        assert (await audit.verify_chain(session)).ok

    # Idempotent: nothing more to remove, and no second entry.
    again = await purge.run(database)
    assert again.removals == []
    assert again.lines()[-1] == "nothing to purge"
    assert len(await _entries(database)) == 1


async def test_without_a_period_conversations_stay_while_the_account_is_active(
    database: Database,
) -> None:
    shop, _ = await make_organisation(database)
    await _set_period(database, shop.id, None)
    await _conversation(database, shop.id, days_ago=3650)
    assert (await purge.run(database)).removals == []
    assert await _count(database, Conversation, shop.id) == 1


async def test_a_message_the_reply_path_holds_is_skipped_not_waited_for(
    database: Database,
) -> None:
    shop, _ = await make_organisation(database)
    await _set_period(database, shop.id, PERIOD_DAYS)
    conversation = await _conversation(database, shop.id, days_ago=60, messages=4)
    async with database.transaction() as session:
        # Not the one with the attachment (message 0).
        held_id = (
            await session.scalars(
                select(Message.id).where(
                    Message.conversation_id == conversation.id, Message.text == "message 1"
                )
            )
        ).one()

    held = Database(database.url, pool_size=1)
    try:
        async with held.transaction() as holder:
            await holder.execute(select(Message.id).where(Message.id == held_id).with_for_update())
            # Would hang on the lock without SKIP LOCKED; the conversation waits too.
            report = await asyncio.wait_for(purge.run(database, batch_size=2), timeout=30)
            assert report.by_organisation()[shop.id]["conversation"] == {
                "messages": 3,
                "message_attachments": 1,
            }
    finally:
        await held.dispose()

    # The next run takes what was held.
    report = await purge.run(database)
    assert report.by_organisation()[shop.id]["conversation"] == {
        "conversations": 1,
        "messages": 1,
        "customers": 1,
    }
    assert await _count(database, Conversation, shop.id) == 0


async def test_a_conversation_that_came_back_to_life_stays(database: Database) -> None:
    shop, _ = await make_organisation(database)
    await _set_period(database, shop.id, PERIOD_DAYS)
    conversation = await _conversation(database, shop.id, days_ago=60, messages=1)
    async with database.transaction() as session:
        revived = await session.get(Conversation, conversation.id)
        assert revived is not None
        revived.last_message_at = NOW
        await make_message(session, revived, text="I'm back")
    # Its last activity is today: all of it stays, the old message too.
    assert (await purge.run(database)).removals == []
    assert await _count(database, Message, shop.id) == 2


# --- account data: life of the account + grace -----------------------------------------


async def test_an_organisation_past_its_grace_is_erased_even_if_its_job_was_lost(
    database: Database,
) -> None:
    gone, _ = await make_organisation(database, name="Closing Down")
    stays, _ = await make_organisation(database, name="Open For Business")
    await _conversation(database, gone.id, days_ago=1)
    async with database.transaction() as session:
        await organisations.schedule_deletion(
            session, gone.id, grace=timedelta(days=30), now=NOW - timedelta(days=31)
        )
        # The erasure job deferred for that moment never ran.
        await session.execute(text("DELETE FROM procrastinate_jobs"))

    due = (await purge.run(database, dry_run=True)).by_organisation()
    assert due[gone.id]["account"]["organisations"] == 1
    assert due[gone.id]["conversation"] == {
        "customers": 1,
        "conversations": 1,
        "messages": 2,
        "message_attachments": 1,
    }
    assert stays.id not in due

    done = await purge.run(database)
    assert done.by_organisation() == due
    async with database.transaction() as session:
        remaining = set(await session.scalars(select(Organisation.id)))
    assert remaining == {stays.id}
    (entry,) = await _entries(database)
    assert entry.organisation_id == gone.id  # the trail outlives the organisation
    assert (await purge.run(database)).removals == []


# --- fixed maximum ages: usage logs, analytics, billing; the audit trail --------------


async def test_age_purger_removes_rows_older_than_the_class_allows(database: Database) -> None:
    shop, _ = await make_organisation(database)
    scratch = Table(
        "usage_log_scratch",
        MetaData(),
        Column("id", UUID(as_uuid=True), primary_key=True),
        Column("organisation_id", UUID(as_uuid=True)),
        Column("created_at", DateTime(timezone=True)),
    )
    limit = MAXIMUM_AGE[Retention.USAGE_LOG]
    async with database.transaction() as session:
        await session.run_sync(lambda sync: scratch.create(sync.connection()))
        for age in (limit + timedelta(days=1), limit + timedelta(days=2), limit / 2):
            await session.execute(
                scratch.insert().values(id=uuid7(), organisation_id=shop.id, created_at=NOW - age)
            )
    purger = AgePurger(Retention.USAGE_LOG, tables=lambda: [scratch])
    assert purger.covers(scratch)

    assert await purger.due(database, NOW) == [
        Removal(shop.id, Retention.USAGE_LOG, "usage_log_scratch", 2)
    ]
    assert await purger.purge(database, NOW, batch_size=1, pace=Pace()) == [
        Removal(shop.id, Retention.USAGE_LOG, "usage_log_scratch", 2)
    ]
    assert await purger.purge(database, NOW, batch_size=1, pace=Pace()) == []
    async with database.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(scratch)) == 1


@pytest.mark.parametrize("batch_size", [2, 1000])
async def test_old_audit_entries_go_and_the_trail_still_verifies(
    database: Database, batch_size: int
) -> None:
    await make_organisation(database)
    async with database.transaction() as session:
        for _ in range(5):
            await audit.record(
                session, action="test.event.recorded", actor=audit.Actor.system("tests")
            )
        entries = await session.scalar(select(func.count()).select_from(AuditEvent))
    seven_years_on = NOW + MAXIMUM_AGE[Retention.AUDIT] + timedelta(days=1)

    due = await purge.run(database, as_of=seven_years_on, dry_run=True)
    # All but the newest, which the chain goes on from.
    assert due.by_organisation()[None] == {"audit": {"audit_events": entries - 1}}

    await purge.run(database, as_of=seven_years_on, batch_size=batch_size)
    async with database.transaction() as session:
        result = await audit.verify_chain(session)
        actions = list(await session.scalars(select(AuditEvent.action).order_by(AuditEvent.seq)))
    assert result.ok, result
    assert audit.CHECKPOINT_ACTION in actions
    # At most the newest is kept (in small batches the purge's own checkpoints, as old
    # as the rest seven years on, become the newest).
    assert actions.count("test.event.recorded") <= 1
    assert actions[-1] == purge.AUDIT_ACTION
