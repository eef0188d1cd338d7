"""An agent writes to a customer through the API: it takes the conversation over, goes
out through WhatsApp, and respects the 24-hour window and the customer's opt-out."""

from __future__ import annotations

from sqlalchemy import update

from cybergine.accounts.models import Role
from cybergine.conversations.models import Conversation
from tests.support.factories import make_api_key
from tests.support.whatsapp import Shop, fixture, readdress

CUSTOMER = "15550001111"


def _conversation(shop: Shop) -> str:
    [conversation] = shop.conversations()
    conversation_id: str = conversation["id"]
    return conversation_id


async def test_an_agent_message_takes_over_and_goes_out_on_whatsapp(shop: Shop) -> None:
    shop.says("What is your return policy?")
    await shop.work()
    conversation_id = _conversation(shop)

    response = shop.api.post(
        f"/api/v1/conversations/{conversation_id}/messages",
        json={"text": "  Hi Ada, this is Sam from the shop. I'll check your order.  "},
    )
    assert response.status_code == 202, response.text
    assert response.json()["sender"] == "agent"
    assert response.json()["status"] == "queued"
    await shop.work()
    assert shop.sent_to(CUSTOMER)[-1] == "Hi Ada, this is Sam from the shop. I'll check your order."
    conversation = shop.conversations()[0]
    assert conversation["state"] == "human"
    assert conversation["unread_count"] == 0

    shop.says("Thanks! And how long does shipping take?")
    await shop.work()
    assert len(shop.sent_to(CUSTOMER)) == 2  # the assistant no longer answers


async def test_after_24_hours_only_a_template_goes_out(shop: Shop) -> None:
    old = readdress(fixture("text_01.json"), shop.phone_number_id, now=False)
    assert shop.post(old).status_code == 200
    await shop.work()
    conversation_id = _conversation(shop)
    path = f"/api/v1/conversations/{conversation_id}/messages"

    refused = shop.api.post(path, json={"text": "Are you still there?"})
    assert refused.status_code == 409
    assert "24 hours" in refused.json()["detail"]

    accepted = shop.api.post(
        path,
        json={
            "text": "Are you still there?",
            "template": {"name": "follow_up", "language": "en_US"},
        },
    )
    assert accepted.status_code == 202, accepted.text
    await shop.work()
    [sent] = [m for m in shop.graph.sent if m.type == "template"]
    assert sent.body["template"]["name"] == "follow_up"
    assert sent.body["template"]["language"]["code"] == "en_US"


async def test_bad_messages_are_refused_clearly(shop: Shop) -> None:
    shop.says("What is your return policy?")
    await shop.work()
    path = f"/api/v1/conversations/{_conversation(shop)}/messages"
    for body in ({}, {"template": {"name": "Not A Name"}}, {"text": "x" * 20_001}):
        response = shop.api.post(path, json=body)
        assert response.status_code == 422, body
        assert response.headers["content-type"].startswith("application/problem+json")
    # Nothing to read: spaces, line breaks, zero-width characters; with a template too.
    for blank in ("   ", "\n\t \u00a0", "\u200b\u2060 \ufeff"):
        for body in ({"text": blank}, {"text": blank, "template": {"name": "follow_up"}}):
            response = shop.api.post(path, json=body)
            assert response.status_code == 422, body
            assert response.headers["content-type"].startswith("application/problem+json")
            assert response.json()["field"] == "text"
            assert response.json()["detail"] == "Write your reply first."
    assert [m["sender"] for m in shop.messages(_conversation(shop))] == ["customer", "assistant"]

    shop.says("STOP")
    await shop.work()
    opted_out = shop.api.post(path, json={"text": "Wait!"})
    assert opted_out.status_code == 409
    assert "opted out" in opted_out.json()["detail"]


async def test_closed_conversations_and_viewers_cannot_be_written_to(shop: Shop) -> None:
    shop.says("What is your return policy?")
    await shop.work()
    conversation_id = _conversation(shop)
    path = f"/api/v1/conversations/{conversation_id}/messages"

    viewer_key = await make_api_key(shop.database, shop.organisation_id, role=Role.VIEWER)
    viewer = shop.api.post(
        path, json={"text": "hello"}, headers={"authorization": f"Bearer {viewer_key}"}
    )
    assert viewer.status_code == 403

    async with shop.database.transaction() as session:
        await session.execute(update(Conversation).values(state="closed"))
    closed = shop.api.post(path, json={"text": "hello"})
    assert closed.status_code == 409
