"""The retention purge against a million expired messages, with the reply path's writes
going on beside it.

An embedded PostgreSQL in a temporary directory, migrated to head. One organisation
keeps conversations 30 days; it is seeded with set-based SQL (``generate_series``):
``--conversations`` conversations quiet for 60 days holding ``--messages`` messages in
all (one in ten with an attachment), and as many active conversations that must
survive. Then ``privacy.purge.run`` removes what is expired, in its batches, while a
probe plays the reply path: it locks an active conversation (``FOR UPDATE``, as a
message is written), adds a message and commits, over and over; its latencies say
whether the purge ever made it wait.

Goal (policy §11, retention engine): 1,000,000 expired messages purged in <= 120 s.

Usage: .venv/bin/python bench/privacy_purge.py [--messages 1000000] [--conversations 1000]
       [--batch-size 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import platform as host
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import text

from cybergine.db import embedded, migrate
from cybergine.db.engine import Database
from cybergine.privacy import keys, purge
from cybergine.privacy.purgers import BATCH_SIZE

GOAL_SECONDS = 120.0
EXPIRED_DAYS_AGO = 60
PERIOD_DAYS = 30

_SEED = [
    "INSERT INTO organisations (id, name) VALUES (:org, 'Bench Shop')",
    """INSERT INTO retention_settings (id, organisation_id, conversation_days)
       VALUES (gen_random_uuid(), :org, :period)""",
    # Customers and conversations: the first half expired, the second half active.
    """INSERT INTO customers (id, organisation_id, channel, external_id, created_at, updated_at)
       SELECT gen_random_uuid(), :org, 'whatsapp', 'bench-' || n,
              now() - make_interval(days => CASE WHEN n <= :conversations THEN :old ELSE 0 END),
              now() - make_interval(days => CASE WHEN n <= :conversations THEN :old ELSE 0 END)
       FROM generate_series(1, 2 * :conversations) AS n""",
    """INSERT INTO conversations (id, organisation_id, channel, customer_id, state,
                                 human_review_requested, unread_count, last_message_at,
                                 created_at)
       SELECT gen_random_uuid(), :org, 'whatsapp', id, 'bot', false, 0,
              created_at, created_at
       FROM customers WHERE organisation_id = :org""",
    """INSERT INTO messages (id, organisation_id, conversation_id, direction, sender, type,
                            text, status, send_attempts, created_at, updated_at)
       SELECT gen_random_uuid(), :org, c.id, 'inbound', 'customer', 'text',
              'Where is my order number ' || n || '?', 'received', 0,
              c.last_message_at, c.last_message_at
       FROM (SELECT id, last_message_at, row_number() OVER (ORDER BY id) AS position
             FROM conversations WHERE organisation_id = :org
             AND last_message_at < now() - make_interval(days => :period)) AS c
       JOIN generate_series(1, :messages) AS n ON n % :conversations = c.position - 1""",
    # The active conversations get a few messages each: they must all survive.
    """INSERT INTO messages (id, organisation_id, conversation_id, direction, sender, type,
                            text, status, send_attempts, created_at, updated_at)
       SELECT gen_random_uuid(), :org, c.id, 'inbound', 'customer', 'text', 'Still here',
              'received', 0, now(), now()
       FROM conversations c, generate_series(1, 3)
       WHERE c.organisation_id = :org AND c.last_message_at > now() - interval '1 day'""",
    """INSERT INTO message_attachments (id, organisation_id, message_id, media_id, status,
                                       mime_type, size_bytes, data)
       SELECT gen_random_uuid(), :org, id, 'media-' || id, 'stored', 'image/png', 1024,
              decode(repeat('ab', 1024), 'hex')
       FROM messages WHERE organisation_id = :org AND text LIKE '%0?'
       AND created_at < now() - make_interval(days => :period)""",
    "ANALYZE",
]


async def seed(database: Database, organisation: uuid.UUID, args: argparse.Namespace) -> None:
    params = {
        "org": organisation,
        "period": PERIOD_DAYS,
        "old": EXPIRED_DAYS_AGO,
        "conversations": args.conversations,
        "messages": args.messages,
    }
    for statement in _SEED:
        async with database.transaction() as session:
            await session.execute(text(statement), params)


async def count(database: Database, sql: str) -> int:
    async with database.transaction() as session:
        return int((await session.execute(text(sql))).scalar_one())


async def reply_path_probe(database: Database, stop: asyncio.Event) -> list[float]:
    """What the reply path does to an active conversation, as often as it can: lock the
    conversation, write a message, commit. Milliseconds per round."""
    async with database.transaction() as session:
        active = list(
            (
                await session.execute(
                    text(
                        "SELECT id, organisation_id FROM conversations "
                        "WHERE last_message_at > now() - interval '1 day' LIMIT 50"
                    )
                )
            ).all()
        )
    latencies: list[float] = []
    round_number = 0
    while not stop.is_set():
        conversation, organisation = active[round_number % len(active)]
        round_number += 1
        started = time.perf_counter()
        async with database.transaction() as session:
            await session.execute(
                text("SELECT 1 FROM conversations WHERE id = :id FOR UPDATE"), {"id": conversation}
            )
            await session.execute(
                text(
                    "INSERT INTO messages (id, organisation_id, conversation_id, direction, "
                    "sender, type, text, status, send_attempts) VALUES (gen_random_uuid(), "
                    ":org, :id, 'inbound', 'customer', 'text', 'probe', 'received', 0)"
                ),
                {"org": organisation, "id": conversation},
            )
            await session.execute(
                text("UPDATE conversations SET last_message_at = now() WHERE id = :id"),
                {"id": conversation},
            )
        latencies.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(0.01)
    return latencies


async def main(args: argparse.Namespace) -> int:
    keys.install(
        keys.ServerKeys(
            secret_key=keys.generate_secret_key().encode(),
            encryption_keys=(keys.generate_fernet_key(),),
        )
    )
    workdir = Path(tempfile.mkdtemp(prefix="cybergine-bench-purge-"))
    # Registered before the server starts, so it runs after the server's own exit hook
    # has stopped it.
    atexit.register(shutil.rmtree, workdir, ignore_errors=True)
    url = embedded.start(workdir / "data").url
    migrate.upgrade(url)
    database = Database(url, pool_size=4, statement_timeout_ms=0)
    organisation = uuid.uuid4()
    started = time.perf_counter()
    await seed(database, organisation, args)
    expired = await count(
        database,
        f"SELECT count(*) FROM messages WHERE created_at < now() - interval '{PERIOD_DAYS} days'",
    )
    survivors = await count(database, "SELECT count(*) FROM messages") - expired
    print(
        f"seeded {expired:,} expired messages in {args.conversations:,} conversations "
        f"(+{survivors:,} active) in {time.perf_counter() - started:.1f} s"
    )

    # A quiet baseline for the probe, then the same probe while the purge runs.
    stop = asyncio.Event()
    baseline_probe = asyncio.create_task(reply_path_probe(database, stop))
    await asyncio.sleep(3)
    stop.set()
    baseline = await baseline_probe

    stop = asyncio.Event()
    probe = asyncio.create_task(reply_path_probe(database, stop))
    started = time.perf_counter()
    report = await purge.run(database, batch_size=args.batch_size)
    seconds = time.perf_counter() - started
    stop.set()
    during = await probe

    removed = report.by_organisation()[organisation]["conversation"]
    left_expired = await count(
        database,
        f"SELECT count(*) FROM messages WHERE created_at < now() - interval '{PERIOD_DAYS} days'",
    )
    left_active = await count(database, "SELECT count(*) FROM messages")
    await database.dispose()

    def figures(values: list[float]) -> str:
        ordered = sorted(values)
        p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
        return (
            f"p50 {statistics.median(ordered):.1f} ms, p99 {p99:.1f} ms, "
            f"max {ordered[-1]:.1f} ms over {len(ordered)} writes"
        )

    print(f"host: {host.node()} {host.machine()}, batch size {args.batch_size}")
    print(f"purged: {removed}")
    print(
        f"retention purge of {removed.get('messages', 0):,} expired messages: "
        f"{seconds:.1f} s ({removed.get('messages', 0) / seconds:,.0f} messages/s), "
        f"goal <= {GOAL_SECONDS:.0f} s"
    )
    print(f"reply-path writes before: {figures(baseline)}")
    print(f"reply-path writes during: {figures(during)}")
    print(f"left: {left_expired} expired, {left_active:,} active messages")
    ok = seconds <= GOAL_SECONDS and left_expired == 0 and left_active >= survivors
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--conversations", type=int, default=1000)
    parser.add_argument("--batch-size", type=int, default=BATCH_SIZE)
    raise SystemExit(asyncio.run(main(parser.parse_args())))
