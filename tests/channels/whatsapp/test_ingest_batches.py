"""Deliveries stored in batches (group commit): many at once from many customers, with
Meta's duplicates among them, each stored once, in commit order per conversation, with
one reply job each; and a delivery that cannot be stored fails alone."""

from __future__ import annotations

import asyncio
import concurrent.futures
import copy
import uuid

from sqlalchemy import func, select, text

from cybergine.channels.whatsapp.batcher import IngestBatcher
from cybergine.channels.whatsapp.ingest import NumberDirectory, NumberRoute, delivery_items
from cybergine.conversations.models import Conversation, Direction, Message
from cybergine.settings import Settings
from tests.support.whatsapp import Shop

CUSTOMERS = [f"4477008{n:05d}" for n in range(6)]


async def test_concurrent_deliveries_are_stored_once_in_commit_order(shop: Shop) -> None:
    bodies = []
    for n in range(60):
        customer = CUSTOMERS[n % len(CUSTOMERS)]
        bodies.append(
            shop.graph.inbound_webhook(shop.phone_number_id, customer, f"Question number {n}")
        )
    duplicates = [copy.deepcopy(bodies[n]) for n in range(0, 60, 6)]  # Meta retries

    with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(lambda body: shop.post(body).status_code, bodies + duplicates))
    assert statuses == [200] * 70

    async with shop.database.transaction() as session:
        stored = await session.scalar(
            select(func.count()).select_from(Message).where(Message.direction == Direction.INBOUND)
        )
        jobs = await session.scalar(
            text("SELECT count(*) FROM procrastinate_jobs WHERE task_name = 'conversations:reply'")
        )
        conversations = list((await session.execute(select(Conversation))).scalars())
        for conversation in conversations:
            newest = await session.scalar(
                select(Message.id)
                .where(Message.conversation_id == conversation.id)
                .order_by(Message.id.desc())
                .limit(1)
            )
            assert conversation.last_message_id == newest
            assert conversation.unread_count == 10
    assert stored == 60
    assert jobs == 60
    assert len(conversations) == len(CUSTOMERS)


async def test_a_delivery_that_cannot_be_stored_fails_alone(shop: Shop, settings: Settings) -> None:
    directory_routes = await _routes(shop)
    good = delivery_items(
        shop.graph.inbound_webhook(shop.phone_number_id, CUSTOMERS[0], "Hello there"),
        directory_routes,
    )
    broken = delivery_items(
        shop.graph.inbound_webhook(shop.phone_number_id, CUSTOMERS[1], "And me?"),
        directory_routes,
    )
    assert good is not None
    assert broken is not None
    broken[0]["account"]["org"] = str(uuid.uuid4())  # an organisation that does not exist

    assert settings.database_url is not None
    batcher = IngestBatcher(settings.database_url)
    await batcher.start()
    try:
        results = await asyncio.gather(
            batcher.submit(good), batcher.submit(broken), return_exceptions=True
        )
    finally:
        await batcher.stop()
    assert results[0] is None
    assert isinstance(results[1], Exception)
    async with shop.database.transaction() as session:
        texts = list((await session.execute(select(Message.text))).scalars())
    assert texts == ["Hello there"]


async def _routes(shop: Shop) -> dict[str, NumberRoute]:
    directory = NumberDirectory(shop.database, default_app_secret=None)
    return dict(await directory.lookup([shop.phone_number_id]))
