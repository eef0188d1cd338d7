"""The purger of conversation history (policy §11): an organisation's own period.

A conversation is expired when its last activity is older than the organisation's
period; it goes with its messages, their attachments and raw events, and its customer
once they have no conversation left, children before parents, in batches.

Messages are partitioned by year (``db.partitions``). A year none of whose messages is
kept any more goes first, whole (:func:`drop_expired_partitions`): a catalogue change
instead of a delete per row, which also gives back the room of the rows the batches
deleted before (no message is written into a past year again to fill it). The batches
take the expired messages of the years that also hold kept ones, hour by hour.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import Table, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from cybergine.db import partitions
from cybergine.db.engine import Database
from cybergine.privacy.purging import Pace, Purger, Removal, batch, counts, removals
from cybergine.privacy.retention import Retention
from cybergine.privacy.retention_settings import RetentionSettings

log = structlog.get_logger(__name__)

# A conversation is expired when its last activity is older than the period. Written so
# the planner can use (organisation_id, last_message_at); a conversation with no message
# yet counts from its creation.
_EXPIRED_BEFORE = (
    "(c.last_message_at < {cutoff} OR (c.last_message_at IS NULL AND c.created_at < {cutoff}))"
)
_EXPIRED_CONVERSATION = f"""
    c.organisation_id = :organisation_id
    AND {_EXPIRED_BEFORE.format(cutoff=":cutoff")}
"""
# A customer left without any conversation, not seen for the period either.
_EXPIRED_CUSTOMER = """
    cu.organisation_id = :organisation_id AND cu.updated_at < :cutoff
    AND NOT EXISTS (SELECT 1 FROM conversations c WHERE c.customer_id = cu.id)
"""
_EXPIRED_EVENT = "e.organisation_id = :organisation_id AND e.created_at < :cutoff"

# Messages first, in batches (a conversation may hold many), with their attachments. A
# message in the snapshot of a conversation found expired is as old as its last
# activity: one written later moved last_message_at in the same transaction. The batch
# is joined, not listed (``= ANY``), so the planner weighs a probe per row against one
# read of the table (on a table of a million rows, the read: a batch then dirties the
# pages its rows lie in, in their order).
_PURGE_MESSAGES = f"""
WITH doomed AS (
    SELECT m.id FROM conversations c
    JOIN messages m ON m.conversation_id = c.id
    WHERE {_EXPIRED_CONVERSATION}
    LIMIT :batch_size
    FOR UPDATE OF m SKIP LOCKED
), attachments AS (
    DELETE FROM message_attachments a USING doomed WHERE a.message_id = doomed.id RETURNING 1
), gone AS (
    DELETE FROM messages m USING doomed WHERE m.id = doomed.id RETURNING 1
)
SELECT (SELECT count(*) FROM gone) AS messages,
       (SELECT count(*) FROM attachments) AS message_attachments
"""  # noqa: S608 (fragments of this module, no input)


def _batch_delete(table: str, alias: str, condition: str) -> str:
    """A batch of ``table``'s rows that meet ``condition``, locked (skipping rows others
    hold) and deleted; counted under the table's name."""
    return f"""
WITH doomed AS (
    SELECT {alias}.id FROM {table} {alias} WHERE {condition}
    LIMIT :batch_size
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM {table} {alias} USING doomed WHERE {alias}.id = doomed.id RETURNING 1
)
SELECT count(*) AS {table} FROM gone
"""  # noqa: S608 (fragments of this module, no input)


# Then the conversations emptied, each locked and checked again: one that came back to
# life since (a message written under its lock) is not expired any more and stays. Only
# empty ones, so no cascade waits for a message row someone else holds.
_PURGE_CONVERSATIONS = _batch_delete(
    "conversations",
    "c",
    f"{_EXPIRED_CONVERSATION}\n    AND NOT EXISTS "  # noqa: S608 (fragments of this module)
    "(SELECT 1 FROM messages m WHERE m.conversation_id = c.id)",
)
_PURGE_CUSTOMERS = _batch_delete("customers", "cu", _EXPIRED_CUSTOMER)
# Raw webhook events are pruned after a week anyway; a shorter period takes them sooner.
_PURGE_EVENTS = _batch_delete("whatsapp_webhook_events", "e", _EXPIRED_EVENT)
_DUE = f"""
SELECT
    (SELECT count(*) FROM conversations c WHERE {_EXPIRED_CONVERSATION}) AS conversations,
    (SELECT count(*) FROM conversations c JOIN messages m ON m.conversation_id = c.id
        WHERE {_EXPIRED_CONVERSATION}) AS messages,
    (SELECT count(*) FROM conversations c JOIN messages m ON m.conversation_id = c.id
        JOIN message_attachments a ON a.message_id = m.id
        WHERE {_EXPIRED_CONVERSATION}) AS message_attachments,
    -- Customers whose conversations all go now (or who have none left).
    (SELECT count(*) FROM customers cu WHERE cu.organisation_id = :organisation_id
        AND cu.updated_at < :cutoff AND NOT EXISTS (
            SELECT 1 FROM conversations c WHERE c.customer_id = cu.id
            AND ({_EXPIRED_CONVERSATION}) IS NOT TRUE
        )) AS customers,
    (SELECT count(*) FROM whatsapp_webhook_events e WHERE {_EXPIRED_EVENT})
        AS whatsapp_webhook_events
"""  # noqa: S608 (fragments of this module, no input)
# A partition of messages (db.partitions) goes whole when none of its messages is kept:
# each belongs to a conversation expired under its organisation's period (an
# organisation without one keeps them). Asked again under locks on the partition and on
# its conversations, so no message comes in meanwhile to keep one of them.
_PARTITION_CONVERSATIONS = """
SELECT count(*) FROM (
    SELECT 1 FROM conversations c
     WHERE c.id IN (SELECT DISTINCT conversation_id FROM "{partition}")
       FOR SHARE OF c
) locked
"""
# Whether an organisation without a period has messages in the partition: its
# organisations listed one index probe at a time (a skip scan), however many messages.
_PARTITION_KEEPER = """
WITH RECURSIVE owners AS (
    (SELECT organisation_id FROM "{partition}" ORDER BY organisation_id LIMIT 1)
    UNION ALL
    SELECT (SELECT m.organisation_id FROM "{partition}" m
             WHERE m.organisation_id > owners.organisation_id
             ORDER BY m.organisation_id LIMIT 1)
      FROM owners WHERE owners.organisation_id IS NOT NULL
)
SELECT EXISTS (
    SELECT 1 FROM owners
     WHERE organisation_id IS NOT NULL
       AND NOT organisation_id = ANY (CAST(:organisations AS uuid[]))
)
"""
# Whether one of its messages belongs to a conversation not expired under its
# organisation's period, newest first: a year's last messages are the likeliest to be
# kept, so a year that stays is found so at once, and only a year about to go is read
# whole.
# (A row or none: inside EXISTS, PostgreSQL would drop the order.)
_PARTITION_KEPT = f"""
SELECT true FROM "{{partition}}" m
  JOIN conversations c ON c.id = m.conversation_id
  JOIN unnest(CAST(:organisations AS uuid[]), CAST(:cutoffs AS timestamptz[]))
       AS period(organisation_id, cutoff) ON period.organisation_id = c.organisation_id
 WHERE NOT {_EXPIRED_BEFORE.format(cutoff="period.cutoff")}
 ORDER BY m.id DESC
 LIMIT 1
"""  # noqa: S608 (fragments of this module, no input)
# What refers to the partition's messages goes as the cascade of their deletion would
# take it (PostgreSQL detaches no partition while a row refers into it).
_PARTITION_REFERENCES = (
    'UPDATE messages SET reply_to_id = NULL WHERE reply_to_id IN (SELECT id FROM "{partition}")',
    'UPDATE csat_surveys SET message_id = NULL WHERE message_id IN (SELECT id FROM "{partition}")',
    'DELETE FROM knowledge_gap_questions WHERE message_id IN (SELECT id FROM "{partition}")',
)
_PARTITION_ATTACHMENTS = """
WITH gone AS (
    DELETE FROM message_attachments WHERE message_id IN (SELECT id FROM "{partition}")
    RETURNING organisation_id
)
SELECT organisation_id, count(*) FROM gone GROUP BY 1
"""
# The order the purge goes in: children before parents, so each batch stays small.
_STEPS = (_PURGE_MESSAGES, _PURGE_CONVERSATIONS, _PURGE_CUSTOMERS, _PURGE_EVENTS)
# The raw events are operational rows, purged here too for a period shorter than theirs.
_TABLES = {
    "customers": "once none of their conversations is left and they were not seen for "
    "the organisation's period",
    "conversations": "when their last activity is older than the organisation's period",
    "messages": "with their conversation",
    "message_attachments": "with their message",
    "csat_surveys": "with their conversation (ON DELETE CASCADE)",
}


class ConversationPurger(Purger):
    """Conversation history, with its messages, attachments and raw events, once its
    last activity is older than the organisation's period. Organisations that set none
    keep it while the account is active; the account purger removes it after."""

    serves = frozenset({Retention.CONVERSATION})

    def covers(self, table: Table) -> str | None:
        return _TABLES.get(table.name)

    async def _periods(
        self, database: Database, as_of: datetime
    ) -> list[tuple[uuid.UUID, datetime]]:
        async with database.transaction() as session:
            rows = await session.execute(
                select(RetentionSettings.organisation_id, RetentionSettings.conversation_days)
                .where(RetentionSettings.conversation_days.is_not(None))
                .order_by(RetentionSettings.organisation_id)
            )
            return [(row[0], as_of - timedelta(days=row[1] or 0)) for row in rows]

    async def due(self, database: Database, as_of: datetime) -> list[Removal]:
        found: list[Removal] = []
        for organisation_id, cutoff in await self._periods(database, as_of):
            async with database.transaction() as session:
                counted = await counts(
                    session, _DUE, {"organisation_id": organisation_id, "cutoff": cutoff}
                )
            found += removals(organisation_id, Retention.CONVERSATION, counted)
        return found

    async def purge(
        self, database: Database, as_of: datetime, batch_size: int, pace: Pace
    ) -> list[Removal]:
        removed: list[Removal] = []
        periods = await self._periods(database, as_of)
        dropped = await drop_expired_partitions(database, periods)
        for organisation_id, cutoff in periods:
            params = {
                "organisation_id": organisation_id,
                "cutoff": cutoff,
                "batch_size": batch_size,
            }
            # What went with whole partitions, then what the batches take.
            totals: Counter[str] = Counter(
                {table: n for (owner, table), n in dropped.items() if owner == organisation_id}
            )
            for step in _STEPS:
                await _steps(database, step, params, totals, pace)
            removed += removals(organisation_id, Retention.CONVERSATION, totals)
        return removed


async def _steps(
    database: Database, sql: str, params: dict[str, Any], totals: Counter[str], pace: Pace
) -> None:
    """``sql`` batch after batch until a batch removes fewer than a batch's rows, resting
    after each."""
    while True:
        started = time.monotonic()
        async with batch(database) as session:
            counted = await counts(session, sql, params)
        totals.update(counted)
        await pace.rest_after(database, started)
        if max(counted.values()) < params["batch_size"]:
            return


async def drop_expired_partitions(
    database: Database, periods: list[tuple[uuid.UUID, datetime]]
) -> Counter[tuple[uuid.UUID, str]]:
    """Every partition of messages of which none is kept under ``periods``
    (organisation, cutoff), detached and dropped with what refers to it, oldest first,
    each in a transaction of its own; the rows that went, per organisation and table. A
    partition that ends after every cutoff may hold a message no period has reached yet
    and is not looked at; one whose locks could not be had at once is left for the next
    run (logged)."""
    removed: Counter[tuple[uuid.UUID, str]] = Counter()
    if not periods:
        return removed
    messages = partitions.PARTITIONED["messages"]
    newest_cutoff = max(cutoff for _, cutoff in periods)
    async with database.transaction() as session:
        names = await partitions.partition_names(session, messages.table)
    candidates = sorted(
        (start, name)
        for name in names
        if (start := messages.start_named(name)) is not None
        and messages.after(start) <= newest_cutoff
    )
    params = {
        "organisations": [organisation_id for organisation_id, _ in periods],
        "cutoffs": [cutoff for _, cutoff in periods],
    }
    for _, name in candidates:
        try:
            async with database.transaction() as session:
                removed.update(await _drop_partition(session, messages, name, params))
        except DBAPIError as error:
            if not partitions.locked_out(error):
                raise
            log.warning("partitions.drop_locked_out", partition=name)
    return removed


async def _drop_partition(
    session: AsyncSession,
    messages: partitions.Partitioning,
    name: str,
    params: dict[str, Any],
) -> Counter[tuple[uuid.UUID, str]]:
    # Asked first without locks: a partition that keeps a message (most, while any
    # organisation keeps history) costs a few index probes, and no lock on its
    # conversations, which would write to every one of their rows.
    if await _kept(session, name, params):
        return Counter()
    await partitions.lock_partition(session, name)
    await session.execute(text(_PARTITION_CONVERSATIONS.format(partition=name)))
    if await _kept(session, name, params):
        return Counter()
    for statement in _PARTITION_REFERENCES:
        await session.execute(text(statement.format(partition=name)))
    attachments = await session.execute(text(_PARTITION_ATTACHMENTS.format(partition=name)))
    gone: Counter[tuple[uuid.UUID, str]] = Counter(
        {(row[0], "message_attachments"): int(row[1]) for row in attachments}
    )
    rows = await partitions.detach_and_drop(session, messages, name)
    gone.update({(owner, "messages"): n for owner, n in rows.items()})
    return gone


async def _kept(session: AsyncSession, name: str, params: dict[str, Any]) -> bool:
    """Whether partition ``name`` holds a message kept under ``params``' periods."""
    for question in (_PARTITION_KEEPER, _PARTITION_KEPT):
        if await session.scalar(text(question.format(partition=name)), params):
            return True
    return False
