"""The reply job's read and write (``conversations.replies``) as each connection keeps
them once prepared: one generic plan, made perhaps while the tables were small and had no
statistics (a new installation's first minutes), kept while they grow. It must reach the
message as one row and its conversation by the conversation's id, so that no reply reads
more as the organisation's conversations pile up: a plan that reached them through an
index of the organisation, or hashed the whole table, made each reply slower than the
one before (``bench/whatsapp.py``, end to end)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from cybergine.conversations import replies
from cybergine.conversations.models import Direction, Message
from cybergine.db.engine import Database
from cybergine.db.partitions import PARTITIONED
from tests.support.conversations import make_conversation, make_message
from tests.support.factories import make_organisation
from tests.support.plans import Prepared, generic_scans

STATEMENTS = {"read": replies._READ, "write": replies._WRITE}


def _arguments(message_id: uuid.UUID) -> dict[str, str]:
    return {"message_id": f"'{message_id}'", "history_turns": "8"}


def _current_partition() -> str:
    messages = PARTITIONED["messages"]
    return messages.name(messages.start_of(datetime.now(UTC)))


async def _answered_conversations(
    database: Database, organisation_id: uuid.UUID, count: int
) -> Message:
    """``count`` conversations of a customer's question and its answer; the last question."""
    async with database.transaction() as session:
        for n in range(count):
            conversation = await make_conversation(session, organisation_id)
            question = await make_message(session, conversation, text=f"Question {n}?")
            await make_message(
                session, conversation, direction=Direction.OUTBOUND, reply_to_id=question.id
            )
    return question


@pytest.mark.parametrize("analysed", [False, True], ids=["no statistics", "analysed"])
async def test_a_reply_reaches_its_message_and_conversation_by_their_ids(
    database: Database, analysed: bool
) -> None:
    shop, _ = await make_organisation(database)
    # conversations answered before this one, as in a busy shop
    question = await _answered_conversations(database, shop.id, 300)
    async with database.transaction() as session:
        if analysed:
            await session.execute(text("ANALYZE conversations, messages"))
        reltuples = await session.scalar(
            text("SELECT reltuples FROM pg_class WHERE relname = 'conversations'")
        )
        assert (reltuples == -1) is not analysed, "the premise: statistics or none"
    for name, statement in STATEMENTS.items():
        async with database.transaction() as session:
            scans = await generic_scans(session, str(statement), _arguments(question.id))
        conversations = [scan for scan in scans if scan.relation == "conversations"]
        assert conversations, name
        assert {scan.index for scan in conversations} == {"pk_conversations"}, (name, scans)
        read_now = [scan for scan in scans if scan.relation == _current_partition()]
        assert read_now, name
        assert all(scan.node != "Seq Scan" for scan in read_now), (name, read_now)


async def test_a_connection_keeps_one_plan_of_each_while_messages_grow(database: Database) -> None:
    """PostgreSQL plans a prepared statement anew for each run (a custom plan) when its
    generic plan costs more than the custom plans did, and after each analysis of a table
    it names it compares the two again. Autovacuum analyses each partition of messages as
    it grows, never the partitioned table, so its estimates of a join on messages are
    guesses: one that made a message many rows multiplied the cost of everything the
    statement checks per row, and each connection planned the reply's read and write
    anew, about 1 ms each, at each run (``bench/whatsapp.py``, end to end)."""
    shop, _ = await make_organisation(database)
    async with database.transaction() as session:
        conversation = await make_conversation(session, shop.id)
        for n in range(3):
            question = await make_message(session, conversation, text=f"Question {n}?")
    async with database.autocommit() as session:
        connection = await session.connection()
        prepared = [
            await Prepared.on(connection, name, str(statement), _arguments(question.id))
            for name, statement in STATEMENTS.items()
        ]

        async def run(times: int) -> None:
            for statement in prepared:
                for _ in range(times):
                    await statement.execute()

        await run(10)  # a new installation: small tables, no statistics
        await _answered_conversations(database, shop.id, 1000)
        async with database.autocommit() as analysing:  # as autovacuum does
            await analysing.execute(
                text(f"ANALYZE {_current_partition()}, conversations, customers")
            )
        await run(20)
        for statement in prepared:
            # PostgreSQL makes five custom plans of any statement before it weighs them
            assert await statement.plans() == (25, 5), statement.name
