"""bench/shopify.py's ``redact`` section: Shopify's ``shop/redact`` for a shop with 10,000
products (30,000 variants, their options, images, collections, search rows with vectors)
and 100,000 messages (2,000 customers, their conversations, a photo in every 50th
message), through the platform's own path: the delivery stored as the webhook stores it,
then processed as its job processes it (``shopify.deliveries.process``). Target: ≤ 60 s
and zero rows left that name the shop's organisation, in every table of the schema and
among the queued jobs; a neighbouring shop's rows untouched.

Baseline, measured in the same run on an identical shop: the bare cascade, one
``DELETE FROM organisations`` with nothing around it, which is the floor any erasure of
that much data pays. (Before ``catalog_variants.image_id`` was indexed, migration 0023,
that cascade looked up the variants of each deleted image by a scan of all of them and
did not end within the 30 s statement timeout.)

Measured on the 2-core machine (shared with other work): shop/redact 1.9 s against a bare
cascade of 1.3 s, 196,223 rows in 15 tables and the job queue per shop, none left.
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg
from sqlalchemy import func, select, text

import cybergine.jobs  # noqa: F401  (a worker has every task loaded before it runs one)
from cybergine.accounts.service.organisations import create_organisation
from cybergine.catalog import search_index
from cybergine.db.base import Base
from cybergine.db.engine import Database
from cybergine.db.urls import libpq_url
from cybergine.shopify import deliveries, webhooks
from cybergine.shopify.models import ShopifyShop, ShopStatus
from cybergine.shopify.topics import SHOP_REDACT

SeedCatalogue = Callable[[str, uuid.UUID, int], float]

CUSTOMERS = 2_000
PHOTO_EVERY = 50  # one message in so many carries a (small) photo

_CONVERSATIONS_SEED = [
    """INSERT INTO customers (id, organisation_id, channel, external_id, phone_number,
                            display_name)
       SELECT gen_random_uuid(), :org, 'whatsapp', :prefix || n, '+' || :prefix || n,
              'Customer ' || n
       FROM generate_series(1, :customers) AS n""",
    """INSERT INTO conversations (id, organisation_id, channel, customer_id, state,
                                human_review_requested, unread_count, last_message_at)
       SELECT gen_random_uuid(), :org, 'whatsapp', u.id, 'bot', false, 0, now()
       FROM customers u WHERE u.organisation_id = :org""",
    """INSERT INTO messages (id, organisation_id, conversation_id, direction, sender, type,
                           text, external_id, status, send_attempts)
       SELECT gen_random_uuid(), :org, c.id,
              (CASE WHEN n % 2 = 0 THEN 'inbound' ELSE 'outbound' END)::message_direction,
              (CASE WHEN n % 2 = 0 THEN 'customer' ELSE 'assistant' END)::message_sender,
              'text', 'Where is my order ' || n || '? It was the blue trail shoe.',
              'wamid.' || c.id || '.' || n,
              (CASE WHEN n % 2 = 0 THEN 'received' ELSE 'read' END)::message_status, 0
       FROM conversations c
       CROSS JOIN generate_series(1, :per_conversation) AS n
       WHERE c.organisation_id = :org""",
    """INSERT INTO message_attachments (id, organisation_id, message_id, media_id, status,
                                      mime_type, data, size_bytes, sha256)
       SELECT gen_random_uuid(), :org, m.id, 'media-' || m.id, 'stored', 'image/jpeg',
              decode(repeat(md5(m.id::text), 64), 'hex'), 1024, md5(m.id::text)
       FROM messages m
       WHERE m.organisation_id = :org AND abs(hashtext(m.id::text)) % :photo_every = 0""",
    """INSERT INTO shopify_webhook_deliveries (id, organisation_id, shop_id, topic, webhook_id,
                                             payload, status, attempts)
       SELECT gen_random_uuid(), :org, :shop, 'products/update', 'seed-' || n,
              jsonb_build_object('id', n), 'processed', 1
       FROM generate_series(1, 200) AS n""",
]


async def _seed_shop(
    url: str,
    database: Database,
    seed_catalogue: SeedCatalogue,
    *,
    name: str,
    products: int,
    messages: int,
) -> tuple[uuid.UUID, str]:
    """An organisation with its shop (uninstalled, as it is when shop/redact arrives), its
    catalogue and search rows with vectors, and its conversations. Returns the
    organisation's id and the shop's domain."""
    domain = f"{name}-{uuid.uuid4().hex[:6]}.myshopify.com"
    async with database.transaction() as session:
        organisation_id = (await create_organisation(session, name=name)).id
        shop = ShopifyShop(
            organisation_id=organisation_id,
            shop_domain=domain,
            status=ShopStatus.UNINSTALLED,
            uninstalled_at=datetime.now(UTC),
        )
        session.add(shop)
        await session.flush()
        shop_id = shop.id
    seed_catalogue(url, organisation_id, products)
    async with database.autocommit() as session:
        ids = list(
            await session.scalars(
                text("SELECT id FROM catalog_products WHERE organisation_id = :o"),
                {"o": organisation_id},
            )
        )
    for start in range(0, len(ids), 2000):
        async with database.transaction() as session:
            await search_index.refresh(session, organisation_id, ids[start : start + 2000])
    parameters = {
        "org": organisation_id,
        "shop": shop_id,
        "prefix": str(abs(hash(name)) % 10**6),
        "customers": CUSTOMERS,
        "per_conversation": max(1, messages // CUSTOMERS),
        "photo_every": PHOTO_EVERY,
    }
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        # Every search row gets a vector, as the embedding job leaves them.
        conn.execute(
            "UPDATE catalog_product_search SET embedding = "
            "CAST(array_fill(0.05::real, ARRAY[384]) AS vector), embedding_model = 'bench' "
            "WHERE organisation_id = %s",
            (organisation_id,),
        )
    async with database.transaction() as session:
        for statement in _CONVERSATIONS_SEED:
            await session.execute(text(statement), parameters)
    # Jobs that name the shop or its organisation, as a sync queues them.
    async with database.transaction() as session:
        for argument, value in (("shop_id", shop_id), ("organisation_id", organisation_id)):
            await session.execute(
                text(
                    "INSERT INTO procrastinate_jobs (queue_name, task_name, args, scheduled_at) "
                    "VALUES ('default', 'shopify:sync', "
                    "jsonb_build_object(CAST(:a AS text), CAST(:v AS text)), "
                    "now() + interval '1 hour')"
                ),
                {"a": argument, "v": str(value)},
            )
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("ANALYZE")
    return organisation_id, domain


async def rows_naming(database: Database, organisation_id: uuid.UUID) -> dict[str, int]:
    """Rows that name the organisation, per table (any column that refers to one) and in
    the job queue (any argument); the audit trail, kept by design, is left out."""
    counts: dict[str, int] = {}
    async with database.autocommit() as session:
        for table in Base.metadata.sorted_tables:
            if table.name == "audit_events":
                continue
            for column in table.c:
                names = column.name == "organisation_id" or any(
                    fk.column.table.name == "organisations" for fk in column.foreign_keys
                )
                if table.name == "organisations" and column.name == "id":
                    names = True
                if not names:
                    continue
                found = await session.scalar(
                    select(func.count()).select_from(table).where(column == organisation_id)
                )
                if found:
                    counts[f"{table.name}.{column.name}"] = int(found)
        jobs = await session.scalar(
            text("SELECT count(*) FROM procrastinate_jobs WHERE CAST(args AS text) LIKE :v"),
            {"v": f"%{organisation_id}%"},
        )
        if jobs:
            counts["procrastinate_jobs"] = int(jobs)
    return counts


async def _redact(database: Database, domain: str) -> float:
    """shop/redact as it arrives: stored by the webhook's code, processed by its job's."""
    headers = webhooks.WebhookHeaders(SHOP_REDACT, domain, str(uuid.uuid4()), "2026-07", None)
    payload = {"shop_id": 954889, "shop_domain": domain}
    started = time.perf_counter()
    async with database.transaction() as session:
        receipt = await webhooks.store(session, headers, payload)
    assert receipt is webhooks.Receipt.RECEIVED, receipt
    async with database.autocommit() as session:
        delivery_id = await session.scalar(
            text("SELECT id FROM shopify_webhook_deliveries WHERE webhook_id = :w AND topic = :t"),
            {"w": headers.webhook_id, "t": SHOP_REDACT},
        )
    await deliveries.process(database, delivery_id, last_attempt=True)
    return time.perf_counter() - started


async def _bare_cascade(database: Database, organisation_id: uuid.UUID) -> float:
    started = time.perf_counter()
    async with database.transaction() as session:
        await session.execute(text("SET LOCAL statement_timeout = 0"))
        await session.execute(
            text("DELETE FROM organisations WHERE id = :o"), {"o": organisation_id}
        )
    return time.perf_counter() - started


async def redact_section(
    url: str, database: Database, args: argparse.Namespace, seed_catalogue: SeedCatalogue
) -> None:
    products, messages = args.redact_products, args.redact_messages
    print(
        f"\n== redact: shop/redact of a shop with {products:,} products, {messages:,} messages =="
    )
    started = time.perf_counter()
    shops = [
        await _seed_shop(
            url, database, seed_catalogue, name=name, products=products, messages=messages
        )
        for name in ("redacted", "baseline", "neighbour")
    ]
    (redacted, domain), (baseline, _), (neighbour, _) = shops
    before = await rows_naming(database, redacted)
    neighbour_before = await rows_naming(database, neighbour)
    print(
        f"  three identical shops seeded in {time.perf_counter() - started:.0f} s; each: "
        f"{sum(before.values()):,} rows in {len(before)} tables and the job queue"
    )
    for table in (
        "catalog_products.organisation_id",
        "catalog_variants.organisation_id",
        "catalog_product_search.organisation_id",
        "messages.organisation_id",
        "message_attachments.organisation_id",
    ):
        print(f"    {table.partition('.')[0]:<28} {before.get(table, 0):>9,}")

    seconds = await _redact(database, domain)
    left = await rows_naming(database, redacted)
    floor = await _bare_cascade(database, baseline)
    untouched = await rows_naming(database, neighbour) == neighbour_before
    verdict = "OK" if seconds <= 60 and not left and untouched else "MISSED"
    print(f"\n  shop/redact, stored and processed             {seconds:6.1f} s   (target ≤ 60 s)")
    print(f"  baseline: the bare cascade of an identical shop {floor:6.1f} s")
    print(f"  rows left naming the shop: {sum(left.values())} {left or ''}")
    print(f"  neighbouring shop untouched: {untouched}")
    print(f"  {verdict}")
