"""What Meta accepted is written down even when the database goes away in between: the
send cannot be taken back, and a message left ``sending`` would be sent again once its
reconciliation window passed if the status webhook was lost in the same outage."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import psycopg
from psycopg import sql
from sqlalchemy import select

from cybergine.channels.whatsapp import delivery
from cybergine.conversations.models import Message, MessageStatus
from cybergine.db.urls import libpq_url
from tests.support.whatsapp import Shop, answer_to

CUSTOMER = "15550001111"


async def _queued_answer(shop: Shop) -> uuid.UUID:
    shop.says("What is your return policy?")
    async with shop.database.transaction() as session:
        inbound = await session.scalar(
            select(Message).where(Message.organisation_id == shop.organisation_id)
        )
        assert inbound is not None
        answer = answer_to(
            inbound,
            "Returns are free within 30 days.",
            MessageStatus.QUEUED,
            created_at=datetime.now(UTC),
        )
        session.add(answer)
    return answer.id


def _connections(admin_url: str, database_url: str, *, allowed: bool) -> None:
    """Open the test's database to connections again, or refuse them and cut every open
    one (what a restart does to a worker)."""
    name = psycopg.conninfo.conninfo_to_dict(libpq_url(database_url))["dbname"]
    with psycopg.connect(libpq_url(admin_url), autocommit=True) as admin:
        admin.execute(
            sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS {}").format(
                sql.Identifier(name), sql.SQL("true" if allowed else "false")
            )
        )
        if not allowed:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )


async def test_an_accepted_send_is_recorded_once_the_database_is_back(
    shop: Shop, postgres_admin_url: str, database_url: str
) -> None:
    message_id = await _queued_answer(shop)
    claim = await delivery._claim(shop.database, shop.settings, message_id)
    assert isinstance(claim, delivery.Claim)

    # The database goes away after the claim: Meta accepts the answer, its record waits.
    _connections(postgres_admin_url, database_url, allowed=False)
    try:
        sending = asyncio.create_task(
            delivery.deliver(
                shop.database,
                delivery.graph_client(shop.settings.whatsapp_graph_url),
                message_id,
                claim,
                last_attempt=False,
            )
        )
        for _ in range(300):  # until Meta has it (and a first record was refused)
            if shop.sent_to(CUSTOMER) and not sending.done():
                break
            await asyncio.sleep(0.05)
        assert shop.sent_to(CUSTOMER) == ["Returns are free within 30 days."]
        assert not sending.done(), "the record gave up while the database was away"
    finally:
        _connections(postgres_admin_url, database_url, allowed=True)

    assert await sending == "sent"
    await shop.database.dispose()  # this process's connections were cut too
    async with shop.database.transaction() as session:
        answer = await session.get(Message, message_id)
    assert answer is not None
    # Sent, or further on: the status webhooks may have landed since.
    assert answer.status in {MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ}
    assert answer.external_id == shop.graph.sent[-1].wamid
    assert shop.sent_to(CUSTOMER) == ["Returns are free within 30 days."]  # once
