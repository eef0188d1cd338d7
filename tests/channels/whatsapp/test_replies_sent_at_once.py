"""The reply job sends its own answer when nothing stands in the way: one job per reply,
the customer's message marked read with a typing indicator while the answer is made, and
the delivery job only as the way out (an earlier message still unsent, Meta throttling,
an answer a dead worker left unsent)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select, text

from cybergine.conversations.models import (
    Message,
    MessageStatus,
)
from tests.support.whatsapp import RETURNS_QA, SHIPPING_QA, Shop, answer_to

CUSTOMER = "15550001111"
ACCEPTED = {MessageStatus.SENT, MessageStatus.DELIVERED, MessageStatus.READ}


async def _send_jobs(shop: Shop) -> list[str]:
    async with shop.database.transaction() as session:
        rows = await session.execute(
            text(
                "SELECT args->>'message_id' FROM procrastinate_jobs "
                "WHERE task_name = 'whatsapp:send_message' ORDER BY id"
            )
        )
        return [row[0] for row in rows]


async def _messages(shop: Shop) -> list[Message]:
    async with shop.database.transaction() as session:
        rows = await session.scalars(
            select(Message)
            .where(Message.organisation_id == shop.organisation_id)
            .order_by(Message.id)
        )
        return list(rows)


async def test_the_reply_job_sends_its_answer_after_a_typing_indicator(shop: Shop) -> None:
    wamid = shop.says("What is your return policy?")
    await shop.work()

    [sent] = [m for m in shop.graph.sent if m.to == CUSTOMER]
    assert RETURNS_QA["answer"] in (sent.text or "")
    [receipt] = shop.graph.read_receipts
    assert (receipt.message_id, receipt.typing_indicator) == (wamid, True)
    assert receipt.at <= sent.at
    assert await _send_jobs(shop) == []  # no second job for the send

    inbound, reply = await _messages(shop)
    assert inbound.status == MessageStatus.READ  # marked read at Meta, once
    assert reply.status in ACCEPTED
    assert (reply.external_id, reply.send_attempts) == (sent.wamid, 1)


async def test_a_reply_behind_an_unsent_message_goes_through_the_delivery_job(
    shop: Shop,
) -> None:
    # The first answer is throttled by Meta, so it waits for its retry...
    shop.graph.fail_next(status=429, code=130429, message="Rate limit hit", retry_after=30)
    shop.says("What is your return policy?")
    await shop.work()
    assert shop.graph.sent == []
    first = (await _messages(shop))[1]
    assert first.status == MessageStatus.QUEUED
    assert await _send_jobs(shop) == [str(first.id)]

    # ...and the next answer does not overtake it by being sent from its reply job.
    shop.says("How long does shipping take?")
    await shop.work()
    assert shop.graph.sent == []
    second = (await _messages(shop))[3]
    assert second.reply_to_id is not None
    assert second.status == MessageStatus.QUEUED
    assert await _send_jobs(shop) == [str(first.id), str(second.id)]

    async with shop.database.transaction() as session:
        await session.execute(
            text(
                "UPDATE procrastinate_jobs SET scheduled_at = now() "
                "WHERE task_name = 'whatsapp:send_message'"
            )
        )
    await shop.work()
    texts = shop.sent_to(CUSTOMER)
    assert len(texts) == 2
    assert RETURNS_QA["answer"] in texts[0]
    assert SHIPPING_QA["answer"] in texts[1]


async def test_an_answer_a_dead_worker_left_unsent_is_sent_once_by_the_next_run(
    shop: Shop,
) -> None:
    shop.says("What is your return policy?")
    [inbound] = await _messages(shop)
    # What a worker killed right after writing its answer leaves behind: the answer,
    # claimed for sending a minute ago, never accepted by Meta; the reply job itself
    # is run again (as the stalled-job watchdog re-queues it).
    async with shop.database.transaction() as session:
        session.add(
            answer_to(
                inbound,
                "Returns are free within 30 days.",
                MessageStatus.SENDING,
                send_started_at=datetime.now(UTC) - timedelta(minutes=1),
                send_attempts=1,
                reply_to_id=inbound.id,
            )
        )
    await shop.work()

    assert shop.sent_to(CUSTOMER) == ["Returns are free within 30 days."]
    answer = (await _messages(shop))[1]
    assert answer.status in ACCEPTED
    assert len(await _send_jobs(shop)) == 1


async def test_a_change_to_the_assistant_is_used_by_the_next_reply(shop: Shop) -> None:
    shop.says("Hello")
    await shop.work()
    response = shop.api.patch(
        f"/api/v1/assistants/{shop.assistant_id}", json={"greeting": "Hi, Mia here. Ask away!"}
    )
    assert response.status_code == 200, response.text
    shop.says("Hello")
    await shop.work()
    first, second = shop.sent_to(CUSTOMER)
    assert "Mia here" not in first
    assert second == "Hi, Mia here. Ask away!"

    response = shop.api.patch(f"/api/v1/assistants/{shop.assistant_id}", json={"active": False})
    assert response.status_code == 200, response.text
    shop.says("Hello")
    await shop.work()
    assert len(shop.sent_to(CUSTOMER)) == 2  # a switched-off assistant answers nothing
