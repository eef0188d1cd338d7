"""CSAT on WhatsApp, end to end: a person closes the conversation in the inbox, the
customer receives the survey as an interactive list (the Graph API simulator checks it
as Meta would), and their answer, a chosen row or a typed digit, arrives by webhook and
is recorded in the surveyed conversation, once."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import func, select

from cybergine.accounts.models import Role
from cybergine.analytics import rollups
from cybergine.analytics.models import HourlyFigures
from cybergine.channels.whatsapp.simulator.records import SentMessage
from cybergine.conversations.csat_models import CsatSurvey
from cybergine.conversations.models import Conversation, Customer, Message
from tests.support.inbox import act, conversation_of, member, shop_url, signed_in
from tests.support.whatsapp import Shop

ADA = "15550001111"


def _surveys_sent(shop: Shop, wa_id: str = ADA) -> list[SentMessage]:
    return [
        m
        for m in shop.graph.sent
        if m.to == wa_id and m.type == "interactive" and m.body["interactive"].get("type") == "list"
    ]


async def _close(shop: Shop, conversation_id: str) -> None:
    owner = await member(shop.database, shop.organisation_id, Role.OWNER)
    with signed_in(shop_url(shop), owner) as browser:
        assert act(browser, conversation_id, "close").status_code == 303
    await shop.work()


def _list_reply(shop: Shop, row_id: str, title: str, wa_id: str = ADA) -> dict[str, Any]:
    body = shop.graph.inbound_webhook(shop.phone_number_id, wa_id, "unused", name="Ada")
    message = body["entry"][0]["changes"][0]["value"]["messages"][0]
    del message["text"]
    message["type"] = "interactive"
    message["interactive"] = {"type": "list_reply", "list_reply": {"id": row_id, "title": title}}
    return body


async def _survey(shop: Shop) -> CsatSurvey:
    async with shop.database.transaction() as session:
        return (await session.execute(select(CsatSurvey))).scalar_one()


async def _conversations(shop: Shop) -> int:
    async with shop.database.transaction() as session:
        return int(await session.scalar(select(func.count()).select_from(Conversation)) or 0)


async def test_a_chosen_row_rates_the_closed_conversation_once(shop: Shop) -> None:
    shop.says("What is your return policy?", wa_id=ADA)
    await shop.work()
    conversation = conversation_of(shop, ADA)
    await _close(shop, conversation["id"])

    [sent] = _surveys_sent(shop)
    assert "How would you rate this conversation?" in (sent.text or "")
    rows = sent.body["interactive"]["action"]["sections"][0]["rows"]
    assert len(rows) == 5  # reply buttons stop at three: a list of five rows
    survey = await _survey(shop)
    assert [row["id"] for row in rows] == [f"csat:{survey.id}:{n}" for n in (5, 4, 3, 2, 1)]
    assert survey.rating is None

    four = next(row for row in rows if row["id"].endswith(":4"))
    assert shop.post(_list_reply(shop, four["id"], four["title"])).status_code == 200
    await shop.work()
    survey = await _survey(shop)
    assert survey.rating == 4
    # Kept in the surveyed conversation: no new conversation, no answer from the assistant.
    assert await _conversations(shop) == 1
    async with shop.database.transaction() as session:
        stored = (
            await session.execute(
                select(Message).where(Message.conversation_id == uuid.UUID(conversation["id"]))
            )
        ).scalars()
        last = max(stored, key=lambda m: m.id)
    assert last.payload is not None
    assert last.payload["choice_id"] == four["id"]
    # The team sees the rating on the survey in the conversation's thread.
    owner = await member(shop.database, shop.organisation_id, Role.OWNER)
    with signed_in(shop_url(shop), owner) as browser:
        page = browser.get(f"/inbox/{conversation['id']}").text
    assert 'data-rating="4">rated 4 of 5</strong>' in page
    replies_before = len([m for m in shop.graph.sent if m.to == ADA])

    # Another row chosen later: the first rating stands, and nothing answers it.
    five = rows[0]
    assert shop.post(_list_reply(shop, five["id"], five["title"])).status_code == 200
    await shop.work()
    assert (await _survey(shop)).rating == 4
    assert len([m for m in shop.graph.sent if m.to == ADA]) == replies_before

    # The refresh counts the survey and its answer in the conversation's hour.
    async with shop.database.transaction() as session:
        await rollups.refresh(session, shop.organisation_id, rollups.measure_now(24))
        counted = (
            await session.execute(
                select(
                    func.sum(HourlyFigures.csat_surveys_sent),
                    func.sum(HourlyFigures.csat_responses),
                    func.sum(HourlyFigures.csat_positive),
                ).where(HourlyFigures.organisation_id == shop.organisation_id)
            )
        ).one()
    assert tuple(counted) == (1, 1, 1)


async def test_a_typed_digit_just_after_the_survey_is_its_rating(shop: Shop) -> None:
    shop.says("How long does shipping take?", wa_id=ADA)
    await shop.work()
    await _close(shop, conversation_of(shop, ADA)["id"])
    assert len(_surveys_sent(shop)) == 1

    shop.says(" 2 ", wa_id=ADA)
    await shop.work()
    assert (await _survey(shop)).rating == 2
    assert await _conversations(shop) == 1

    # Answered: the next digit is a message like any other, in a new conversation.
    shop.says("3", wa_id=ADA)
    await shop.work()
    assert (await _survey(shop)).rating == 2
    assert await _conversations(shop) == 2


async def test_a_digit_with_no_survey_waiting_is_an_ordinary_message(shop: Shop) -> None:
    shop.says("5", wa_id=ADA)
    await shop.work()
    assert await _conversations(shop) == 1
    async with shop.database.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(CsatSurvey)) == 0


async def test_another_customers_row_id_records_nothing(shop: Shop) -> None:
    shop.says("What is your return policy?", wa_id=ADA)
    await shop.work()
    await _close(shop, conversation_of(shop, ADA)["id"])
    survey = await _survey(shop)
    # Someone else sends Ada's row id: it names a survey that is not theirs.
    body = _list_reply(shop, f"csat:{survey.id}:1", "x", wa_id="15550002222")
    assert shop.post(body).status_code == 200
    await shop.work()
    assert (await _survey(shop)).rating is None


async def test_no_survey_for_an_opted_out_customer_or_outside_the_window(shop: Shop) -> None:
    shop.says("What is your return policy?", wa_id=ADA)
    await shop.work()
    conversation = conversation_of(shop, ADA)
    async with shop.database.transaction() as session:
        customer = await session.get_one(Customer, uuid.UUID(conversation["customer"]["id"]))
        customer.opted_out_at = func.now()
    await _close(shop, conversation["id"])
    assert _surveys_sent(shop) == []

    shop.says("Hello again", wa_id="15550003333")
    await shop.work()
    other = conversation_of(shop, "15550003333")
    async with shop.database.transaction() as session:
        row = await session.get_one(Conversation, uuid.UUID(other["id"]))
        row.last_inbound_at = func.now() - timedelta(hours=25)
    await _close(shop, other["id"])
    assert _surveys_sent(shop, "15550003333") == []
    async with shop.database.transaction() as session:
        assert await session.scalar(select(func.count()).select_from(CsatSurvey)) == 0
