"""A customer's rights over their data (policy §14): find them, export everything held
about them, erase it — and nothing of anyone else's goes with it."""

from __future__ import annotations

import asyncio
import base64
import json
import time

from sqlalchemy import func, select, text

from cybergine.accounts.models import Role
from cybergine.channels.whatsapp.models import WebhookEvent
from cybergine.channels.whatsapp.simulator import status_webhook
from cybergine.conversations.models import Attachment, Customer, Message, MessageStatus
from cybergine.privacy.audit import AuditEvent
from cybergine.privacy.pseudonyms import erased_external_id
from tests.support.factories import make_api_key
from tests.support.whatsapp import Shop, fixture, readdress

ADA = "15550001111"
GRACE = "15550002222"


async def _chat(shop: Shop) -> None:
    shop.says("What is your return policy? I'm Ada, ada@example.com", wa_id=ADA)
    shop.says("How long does shipping take?", wa_id=GRACE)
    photo = readdress(fixture("image_01.json"), shop.phone_number_id)
    value = photo["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = ADA
    value["messages"][0]["from"] = ADA
    value["messages"][0]["id"] = "wamid.ada-photo"
    shop.graph.add_media(value["messages"][0]["image"]["id"], b"\x89PNG-ada", "image/png")
    value["messages"][0]["image"].pop("sha256", None)
    assert shop.post(photo).status_code == 200
    await shop.work()
    # Meta's status webhooks (sent, delivered) for every reply have come back.
    deadline = time.monotonic() + 10
    while len(shop.graph.webhook_deliveries) < 2 * len(shop.graph.sent):
        assert time.monotonic() < deadline, "status webhooks missing"
        await asyncio.sleep(0.05)


def _customer_id(shop: Shop, wa_id: str) -> str:
    response = shop.api.get("/api/v1/customers", params={"phone_number": f"+{wa_id}"})
    assert response.status_code == 200, response.text
    [customer] = response.json()
    customer_id: str = customer["id"]
    return customer_id


async def test_a_customer_is_found_by_phone_number_in_any_format(shop: Shop) -> None:
    await _chat(shop)
    for spelling in (f"+{ADA}", "+1 555-000-1111", "(1) 555 000 1111", ADA):
        found = shop.api.get("/api/v1/customers", params={"phone_number": spelling}).json()
        assert [c["phone_number"] for c in found] == [f"+{ADA}"], spelling
    newest = shop.api.get("/api/v1/customers").json()
    assert {c["phone_number"] for c in newest} == {f"+{ADA}", f"+{GRACE}"}
    assert shop.api.get("/api/v1/customers", params={"phone_number": "12"}).status_code == 422


async def test_the_export_holds_everything_about_them_and_nothing_else(shop: Shop) -> None:
    await _chat(shop)
    response = shop.api.get(f"/api/v1/customers/{_customer_id(shop, ADA)}/export")
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    exported = response.json()
    assert exported["format"] == "cybergine.customer-export/2"
    assert exported["customer"]["phone_number"] == f"+{ADA}"
    [conversation] = exported["conversations"]
    texts = [m["text"] for m in conversation["messages"]]
    assert "What is your return policy? I'm Ada, ada@example.com" in texts
    assert any(m["sender"] == "assistant" for m in conversation["messages"])
    [photo] = [m for m in conversation["messages"] if m["type"] == "image"]
    assert photo["attachment"]["mime_type"] == "image/png"
    assert "How long does shipping take?" not in response.text  # Grace's words
    # Everything about them, bytes and raw deliveries included; and the copy is audited.
    assert base64.b64decode(photo["attachment"]["data"]) == b"\x89PNG-ada"
    assert exported["webhook_events"]
    assert all(GRACE not in json.dumps(e["value"]) for e in exported["webhook_events"])
    async with shop.database.transaction() as session:
        audited = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "customer.exported")
        )
    assert audited == 1


async def test_erasure_deletes_content_and_anonymises_the_records(shop: Shop) -> None:
    await _chat(shop)
    ada = _customer_id(shop, ADA)
    erased = shop.api.delete(f"/api/v1/customers/{ada}")
    assert erased.status_code == 200, erased.text
    report = erased.json()
    assert report["conversations"] == 1
    assert report["messages"] >= 3
    assert report["attachments"] == 1
    assert report["webhook_events"] >= 2

    async with shop.database.transaction() as session:
        customer = await session.get(Customer, ada)
        assert customer is not None
        assert (customer.phone_number, customer.display_name) == (None, None)
        assert ADA not in customer.external_id
        texts = list(
            (await session.execute(select(Message.text).where(Message.text.is_not(None)))).scalars()
        )
        assert texts  # Grace's conversation is still there
        assert not any("Ada" in t or "return policy" in t for t in texts), texts
        assert await session.scalar(select(func.count()).select_from(Attachment)) == 0
        events = list((await session.execute(select(WebhookEvent.value))).scalars())
        assert events
        assert not any(ADA in str(value) for value in events)
        assert any(GRACE in str(value) for value in events)
        audited = await session.scalar(
            select(func.count())
            .select_from(AuditEvent)
            .where(AuditEvent.action == "customer.erased")
        )
    assert audited == 1
    # The records stay, anonymous: the conversation count does not change.
    assert len(shop.conversations()) == 2

    # Erasing again finds nothing more; writing again starts a new customer.
    again = shop.api.delete(f"/api/v1/customers/{ada}").json()
    assert again["attachments"] == 0
    assert again["webhook_events"] == 0
    shop.says("Hello again", wa_id=ADA)
    assert _customer_id(shop, ADA) != ada


async def test_a_status_arriving_after_erasure_keeps_no_trace_of_them(shop: Shop) -> None:
    await _chat(shop)
    [reply, *_] = [m for m in shop.graph.sent if m.to == ADA]
    assert shop.api.delete(f"/api/v1/customers/{_customer_id(shop, ADA)}").status_code == 200
    # Meta reports the reply delivered, then read, a while later: alone (the SQL ingest),
    # then beside another customer's photo (media take the Python ingest), echoing the
    # callback data the send carried.
    echoed = reply.callback_data
    delivered = status_webhook(
        shop.phone_number_id, reply.wamid, ADA, "delivered", callback_data=echoed
    )
    read = status_webhook(shop.phone_number_id, reply.wamid, ADA, "read", callback_data=echoed)
    photo = readdress(fixture("image_01.json"), shop.phone_number_id)
    read["entry"][0]["changes"] += photo["entry"][0]["changes"]
    for late in (delivered, read):
        assert shop.post(late).status_code == 200
    async with shop.database.transaction() as session:
        events = list((await session.execute(select(WebhookEvent.value))).scalars())
        status = await session.scalar(
            select(Message.status).where(Message.external_id == erased_external_id(reply.wamid))
        )
    assert sum(1 for value in events if value.get("statuses")) >= 2
    assert not any(ADA in str(value) for value in events)
    # Nor the wamid, which is base64 of a structure holding the phone number.
    assert not any(reply.wamid in str(value) for value in events)
    assert status == "read"  # the lifecycle still moved on


async def test_only_owners_and_admins_handle_customer_data(shop: Shop) -> None:
    await _chat(shop)
    ada = _customer_id(shop, ADA)
    agent = await make_api_key(shop.database, shop.organisation_id, role=Role.AGENT)
    headers = {"authorization": f"Bearer {agent}"}
    assert shop.api.get(f"/api/v1/customers/{ada}/export", headers=headers).status_code == 403
    assert shop.api.delete(f"/api/v1/customers/{ada}", headers=headers).status_code == 403


async def test_erasure_closes_their_conversations_and_stops_what_was_waiting(shop: Shop) -> None:
    shop.says("Where is my parcel? I'm Ada", wa_id=ADA)  # its reply job waits
    photo = readdress(fixture("image_01.json"), shop.phone_number_id)
    value = photo["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = value["messages"][0]["from"] = ADA
    assert shop.post(photo).status_code == 200  # its fetch job waits
    [conversation] = shop.conversations()
    queued = shop.api.post(
        f"/api/v1/conversations/{conversation['id']}/messages", json={"text": "On its way!"}
    )
    assert queued.status_code == 202, queued.text  # its delivery job waits

    erased = shop.api.delete(f"/api/v1/customers/{_customer_id(shop, ADA)}")
    assert erased.status_code == 200, erased.text
    assert erased.json()["conversations_closed"] == 1

    async with shop.database.transaction() as session:
        jobs = (
            await session.execute(
                text(
                    "SELECT task_name, status FROM procrastinate_jobs "
                    "WHERE lock LIKE 'conversation:%' OR lock LIKE 'send:%' "
                    "OR task_name = 'whatsapp:fetch_media'"
                )
            )
        ).all()
        agent_message = await session.get(Message, queued.json()["id"])
    assert {(task.rsplit(":", 1)[-1], status) for task, status in jobs} == {
        ("reply", "cancelled"),
        ("send_message", "cancelled"),
        ("fetch_media", "cancelled"),
    }
    assert agent_message is not None
    assert (agent_message.status, agent_message.text) == (MessageStatus.FAILED, None)
    assert agent_message.error_title == "Not sent: the customer's data was erased."
    [closed] = shop.conversations(state="closed")
    assert closed["customer"]["erased"] is True
    await shop.work()
    assert shop.sent_to(ADA) == []
    # Nothing more can be sent there.
    again = shop.api.post(
        f"/api/v1/conversations/{conversation['id']}/messages", json={"text": "Hello?"}
    )
    assert again.status_code == 409
    assert "data was erased" in again.json()["detail"]


async def test_a_message_meta_delivers_again_after_erasure_does_not_bring_them_back(
    shop: Shop,
) -> None:
    # Meta retries a delivery it saw no 200 for; the customer may be erased in between.
    asked = shop.graph.inbound_webhook(
        shop.phone_number_id, ADA, "Is the blue one back in stock?", name="Ada"
    )
    assert shop.post(asked).status_code == 200
    await _chat(shop)
    assert shop.api.delete(f"/api/v1/customers/{_customer_id(shop, ADA)}").status_code == 200
    async with shop.database.transaction() as session:
        before = await session.scalar(select(func.count()).select_from(Message))
    sent = len(shop.graph.sent)

    # Again: the text alone (the SQL ingest), then the photo (media take the Python path).
    photo = readdress(fixture("image_01.json"), shop.phone_number_id)
    value = photo["entry"][0]["changes"][0]["value"]
    value["contacts"][0]["wa_id"] = ADA
    value["messages"][0]["from"] = ADA
    value["messages"][0]["id"] = "wamid.ada-photo"
    for again in (asked, photo):
        assert shop.post(again).status_code == 200
    await shop.work()

    assert shop.api.get("/api/v1/customers", params={"phone_number": f"+{ADA}"}).json() == []
    async with shop.database.transaction() as session:
        after = await session.scalar(select(func.count()).select_from(Message))
        customers = list((await session.execute(select(Customer.phone_number))).scalars())
        events = [str(v) for v in (await session.execute(select(WebhookEvent.value))).scalars()]
    assert after == before
    wamid = asked["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    for trace in (ADA, wamid, "wamid.ada-photo", "blue one"):
        assert not any(trace in event for event in events), trace
    assert f"+{ADA}" not in customers
    assert ADA not in customers
    assert len(shop.graph.sent) == sent  # nobody answered them
