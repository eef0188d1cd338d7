"""A customer writes on WhatsApp and gets a grounded answer, exactly once: the signed
webhook, the stored message, the reply job, the send through the Graph API simulator, and
the status webhooks that come back."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

from sqlalchemy import func, select

from cybergine.channels.whatsapp.models import WebhookEvent
from cybergine.conversations.models import Message
from cybergine.db.engine import Database
from cybergine.mail.models import OutboundEmail
from cybergine.settings import Settings
from tests.support.server import LiveServer
from tests.support.whatsapp import (
    FIXTURES,
    RETURNS_QA,
    VERIFY_TOKEN,
    Shop,
    fixture,
    open_shop,
    readdress,
)

CUSTOMER = "15550001111"


async def _until(condition: Callable[[], bool], seconds: float = 5.0) -> None:
    """Status webhooks come back from the simulator on their own schedule."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def test_a_question_gets_one_grounded_answer_with_the_ai_disclosure(shop: Shop) -> None:
    wamid = shop.says("What is your return policy?")
    await shop.work()

    sent = [m for m in shop.graph.sent if m.to == CUSTOMER]
    assert len(sent) == 1
    text = sent[0].text or ""
    assert text.startswith("You're chatting with an AI assistant")
    assert RETURNS_QA["answer"] in text
    assert "Source: What is your return policy?" in text
    assert shop.graph.read_receipts[0].message_id == wamid

    [conversation] = shop.conversations()
    assert conversation["state"] == "bot"
    assert conversation["customer"]["phone_number"] == f"+{CUSTOMER}"
    assert conversation["customer"]["display_name"] == "Ada"
    inbound, reply = shop.messages(conversation["id"])
    assert (inbound["direction"], inbound["external_id"]) == ("inbound", wamid)
    assert reply["reply_to_id"] == inbound["id"]
    assert reply["grounded"] is True
    assert reply["llm_provider"] == "extractive"
    assert reply["sources"][0]["title"] == RETURNS_QA["question"]
    assert sent[0].callback_data == reply["id"]
    assert reply["external_id"] == sent[0].wamid

    # Meta's status webhooks (sent, delivered) move the message forward.
    await _until(lambda: shop.messages(conversation["id"])[1]["status"] == "delivered")

    # The disclosure comes once per conversation.
    shop.says("How long does shipping take?")
    await shop.work()
    second = shop.sent_to(CUSTOMER)[1]
    assert "AI assistant" not in second
    assert "Orders ship within 2 business days" in second


async def test_a_duplicate_delivery_is_stored_and_answered_once(shop: Shop) -> None:
    body = shop.graph.inbound_webhook(shop.phone_number_id, CUSTOMER, "What is your return policy?")
    for _ in range(3):
        assert shop.post(body).status_code == 200
    await shop.work()
    assert shop.post(body).status_code == 200  # after the answer, too
    await shop.work()

    assert len(shop.sent_to(CUSTOMER)) == 1
    [conversation] = shop.conversations()
    assert [m["direction"] for m in shop.messages(conversation["id"])] == ["inbound", "outbound"]
    async with shop.database.transaction() as session:
        events = await session.scalar(
            select(func.count()).select_from(WebhookEvent).where(WebhookEvent.messages == 1)
        )
    assert events == 4  # every delivery is kept as an event


async def test_a_wrong_signature_is_refused_and_stores_nothing(shop: Shop) -> None:
    body = shop.graph.inbound_webhook(shop.phone_number_id, CUSTOMER, "hello")
    response = shop.post(body, secret="not-the-app-secret")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("application/problem+json")
    unsigned = shop.webhook.post("/webhooks/whatsapp", json=body)
    assert unsigned.status_code == 401
    assert await shop.count(Message) == 0
    assert await shop.count(WebhookEvent) == 0


async def test_unknown_numbers_are_acknowledged_and_nothing_is_stored(shop: Shop) -> None:
    body = shop.graph.inbound_webhook("999000999000", CUSTOMER, "hello")
    response = shop.post(body)
    assert response.status_code == 200
    assert response.json() == {"status": "ignored"}
    assert await shop.count(Message) == 0
    assert await shop.count(WebhookEvent) == 0


async def test_malformed_and_oversized_bodies_get_a_clear_4xx(shop: Shop) -> None:
    bad = shop.webhook.post(
        "/webhooks/whatsapp", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert bad.status_code == 400
    assert "not a WhatsApp webhook" in bad.json()["detail"]
    other = shop.post({"object": "page", "entry": []})
    assert other.status_code == 400

    huge = shop.graph.inbound_webhook(shop.phone_number_id, CUSTOMER, "x" * (3 * 1024 * 1024))
    response = shop.post(huge)
    assert response.status_code == 413
    assert response.headers["content-type"].startswith("application/problem+json")
    assert await shop.count(Message) == 0


async def test_subscription_check_echoes_the_challenge_only_for_a_known_token(
    shop: Shop,
) -> None:
    def check(token: str, mode: str = "subscribe") -> tuple[int, str]:
        response = shop.webhook.get(
            "/webhooks/whatsapp",
            params={"hub.mode": mode, "hub.verify_token": token, "hub.challenge": "1158201444"},
        )
        return response.status_code, response.text

    assert check(VERIFY_TOKEN) == (200, "1158201444")
    assert check("wrong")[0] == 403
    assert check(VERIFY_TOKEN, mode="unsubscribe")[0] == 403

    # A number may bring its own verify token.
    patched = shop.api.patch(
        f"/api/v1/channels/whatsapp/{shop.number_id}", json={"verify_token": "own-token-123456"}
    )
    assert patched.status_code == 200, patched.text
    assert check("own-token-123456") == (200, "1158201444")


async def test_every_documented_message_type_is_stored(shop: Shop) -> None:
    """The real payload examples: each message lands in a conversation with its type."""
    names = sorted(path.name for path in FIXTURES.glob("*.json"))
    stored_types: set[str] = set()
    for name in names:
        body = readdress(fixture(name), shop.phone_number_id)
        for entry in body["entry"]:
            for change in entry["changes"]:
                for n, message in enumerate(change["value"].get("messages", [])):
                    message["id"] = f"wamid.{name}.{n}"  # the examples share ids
        response = shop.post(body)
        assert response.status_code == 200, (name, response.text)
    async with shop.database.transaction() as session:
        rows = await session.execute(select(Message.type, Message.text, Message.payload))
        for type_, _text, _payload in rows:
            stored_types.add(type_)
    expected = {
        "text",
        "image",
        "audio",
        "video",
        "document",
        "sticker",
        "location",
        "contacts",
        "interactive",
        "button",
        "reaction",
        "order",
        "system",
        "request_welcome",
        "unsupported",
    }
    assert expected <= stored_types, expected - stored_types


async def test_a_request_for_a_person_hands_off_at_once_and_the_bot_stops(
    shop: Shop, database: Database
) -> None:
    shop.says("I want to talk to a human please")
    await shop.work()
    [notice] = shop.sent_to(CUSTOMER)
    assert "person from our team" in notice
    [conversation] = shop.conversations()
    assert conversation["state"] == "waiting_for_human"
    assert conversation["human_review_requested"] is False

    async with database.transaction() as session:
        emails = list((await session.execute(select(OutboundEmail))).scalars())
    assert any("waiting for a person" in e.subject for e in emails)
    assert all("human please" not in (e.body_text or "") for e in emails)  # nothing quoted

    shop.says("What is your return policy?")
    await shop.work()
    assert len(shop.sent_to(CUSTOMER)) == 1  # the assistant stays silent
    assert shop.conversations()[0]["unread_count"] == 2


async def test_a_request_for_human_review_is_flagged(shop: Shop) -> None:
    shop.says("I want a human to review this decision")
    await shop.work()
    [conversation] = shop.conversations()
    assert conversation["state"] == "waiting_for_human"
    assert conversation["human_review_requested"] is True
    assert shop.conversations(human_review="true")[0]["id"] == conversation["id"]


async def test_an_unanswerable_question_gets_the_fallback_and_a_button_for_a_person(
    shop: Shop,
) -> None:
    shop.says("Do you sell submarine parts for the Nautilus?")
    await shop.work()
    [sent] = [m for m in shop.graph.sent if m.to == CUSTOMER]
    assert sent.type == "interactive"
    assert "Would you like me to connect you with a person?" in (sent.text or "")
    button = sent.body["interactive"]["action"]["buttons"][0]["reply"]
    assert button["title"] == "Talk to a person"

    # The customer taps it: WhatsApp sends an interactive button_reply.
    body = readdress(fixture("interactive_button_reply_01.json"), shop.phone_number_id)
    message = body["entry"][0]["changes"][0]["value"]["messages"][0]
    message["from"] = CUSTOMER
    message["interactive"]["button_reply"] = {"id": button["id"], "title": button["title"]}
    body["entry"][0]["changes"][0]["value"]["contacts"][0]["wa_id"] = CUSTOMER
    assert shop.post(body).status_code == 200
    await shop.work()
    assert shop.conversations()[0]["state"] == "waiting_for_human"


async def test_stop_opts_out_with_one_confirmation_until_start(shop: Shop) -> None:
    shop.says("STOP")
    await shop.work()
    [confirmation] = shop.sent_to(CUSTOMER)
    assert "won't receive any more messages" in confirmation

    shop.says("What is your return policy?")
    shop.says("Stop.")
    await shop.work()
    assert len(shop.sent_to(CUSTOMER)) == 1  # nothing more, not even a second confirmation
    customer = shop.conversations()[0]["customer"]
    assert customer["opted_out"] is True
    assert customer["opted_out_at"] is not None

    shop.says("start")
    await shop.work()
    assert "Welcome back" in shop.sent_to(CUSTOMER)[1]
    customer = shop.conversations()[0]["customer"]
    assert customer["opted_out"] is False
    assert customer["opted_in_at"] is not None

    shop.says("What is your return policy?")
    await shop.work()
    assert RETURNS_QA["answer"] in shop.sent_to(CUSTOMER)[2]


async def test_outside_the_24_hour_window_a_free_form_reply_fails_with_the_reason(
    shop: Shop,
) -> None:
    body = readdress(fixture("text_01.json"), shop.phone_number_id, now=False)  # from 2023
    assert shop.post(body).status_code == 200
    await shop.work()
    assert shop.graph.sent == []
    [conversation] = shop.conversations()
    reply = shop.messages(conversation["id"])[1]
    assert reply["status"] == "failed"
    assert "24-hour" in reply["error"]["title"]


async def test_a_throttled_send_is_retried_and_a_refused_one_fails_readably(
    shop: Shop,
) -> None:
    shop.graph.fail_next(status=429, code=130429, message="Rate limit hit", retry_after=0)
    shop.says("What is your return policy?")
    await shop.work()
    assert shop.graph.sent == []
    deadline = time.monotonic() + 5  # the retry's backoff is a second at most
    while not shop.sent_to(CUSTOMER):
        assert time.monotonic() < deadline, "the throttled send was not retried"
        await asyncio.sleep(0.1)
        await shop.work()
    assert len(shop.sent_to(CUSTOMER)) == 1

    shop.graph.fail_next(status=400, code=100, message="Invalid parameter")
    shop.says("How long does shipping take?", wa_id="15550002222")
    await shop.work()
    conversation = next(
        c for c in shop.conversations() if c["customer"]["phone_number"] == "+15550002222"
    )
    reply = shop.messages(conversation["id"])[1]
    assert reply["status"] == "failed"
    assert reply["error"]["code"] == 100
    assert "Invalid parameter" in reply["error"]["title"]


async def test_inbound_media_is_fetched_and_stored(shop: Shop) -> None:
    body = readdress(fixture("image_01.json"), shop.phone_number_id)
    image = body["entry"][0]["changes"][0]["value"]["messages"][0]["image"]
    content = b"\x89PNG\r\n\x1a\n" + b"pixels" * 100
    shop.graph.add_media(image["id"], content, "image/png")
    image.pop("sha256", None)
    assert shop.post(body).status_code == 200
    await shop.work()
    [conversation] = shop.conversations()
    inbound = shop.messages(conversation["id"])[0]
    assert inbound["attachment"]["status"] == "stored"
    assert inbound["attachment"]["size_bytes"] == len(content)
    download = shop.api.get(
        f"/api/v1/conversations/{conversation['id']}/messages/{inbound['id']}/attachment"
    )
    assert download.status_code == 200
    assert download.content == content


async def test_status_webhooks_never_move_a_message_backwards(shop: Shop) -> None:
    from cybergine.channels.whatsapp.simulator import status_webhook

    shop.says("What is your return policy?")
    await shop.work()
    [sent] = shop.graph.sent
    await _until(lambda: shop.messages(shop.conversations()[0]["id"])[1]["status"] == "delivered")
    read = status_webhook(shop.phone_number_id, sent.wamid, CUSTOMER, "read")
    assert shop.post(read).status_code == 200
    late = status_webhook(shop.phone_number_id, sent.wamid, CUSTOMER, "sent")
    assert shop.post(late).status_code == 200
    reply = shop.messages(shop.conversations()[0]["id"])[1]
    assert reply["status"] == "read"
    assert reply["read_at"] is not None


async def test_a_number_of_another_organisation_is_not_reached(
    shop: Shop, live_server: LiveServer, database: Database, settings: Settings
) -> None:
    other = await open_shop(live_server, database, settings, shop.graph)
    body = shop.graph.inbound_webhook(shop.phone_number_id, CUSTOMER, "What is your return policy?")
    both = json.loads(json.dumps(body))
    second = other.graph.inbound_webhook(other.phone_number_id, CUSTOMER, "Hello there")
    both["entry"].extend(second["entry"])
    assert shop.post(both).status_code == 200
    assert len(shop.conversations()) == 1
    assert len(other.conversations()) == 1
    assert shop.conversations()[0]["id"] != other.conversations()[0]["id"]
    other.close()


async def test_sends_from_one_number_keep_to_its_rate(shop: Shop) -> None:
    patched = shop.api.patch(f"/api/v1/channels/whatsapp/{shop.number_id}", json={"send_rate": 10})
    assert patched.status_code == 200, patched.text
    customers = [f"1555000{n:04d}" for n in range(8)]
    for customer in customers:
        shop.says("What is your return policy?", wa_id=customer)
    await shop.work()
    times = sorted(m.at for m in shop.graph.sent)
    assert len(times) == len(customers)
    # Eight sends at 10 per second take at least 0.7 s, whatever the worker's concurrency.
    assert (times[-1] - times[0]).total_seconds() >= 0.65
