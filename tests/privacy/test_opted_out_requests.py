"""A customer who opted out (STOP) and then exercises a right in the chat ("delete my
data", "what do you know about me") has it recorded as a privacy request for the team
(policy §14), on every way a message comes in: WhatsApp's webhook and the web chat. The
assistant answers them nothing, and nothing is sent to them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, update

from cybergine.conversations.models import Customer
from cybergine.db.engine import Database
from cybergine.settings import Settings
from tests.support.factories import make_organisation_with_key
from tests.support.jobs import run_jobs
from tests.support.server import LiveServer
from tests.support.whatsapp import Shop

ADA = "15550001111"


def _requests(shop: Shop) -> list[dict[str, Any]]:
    response = shop.api.get("/api/v1/privacy/requests")
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


async def test_an_opted_out_customer_on_whatsapp_has_their_request_recorded(shop: Shop) -> None:
    shop.says("What is your return policy?", wa_id=ADA)
    await shop.work()
    shop.says("STOP", wa_id=ADA)
    await shop.work()
    sent = len(shop.sent_to(ADA))  # the answer and the opt-out's confirmation
    [customer] = shop.api.get("/api/v1/customers", params={"phone_number": f"+{ADA}"}).json()
    assert customer["opted_out"] is True

    shop.says("Please delete my data", wa_id=ADA)
    await shop.work()
    [request] = _requests(shop)
    assert (request["kind"], request["channel"], request["status"]) == (
        "erasure",
        "whatsapp",
        "open",
    )
    assert request["customer_id"] == customer["id"]
    shop.says("What do you know about me?", wa_id=ADA)
    shop.says("How long does shipping take?", wa_id=ADA)  # no right: nothing recorded
    await shop.work()
    assert sorted(r["kind"] for r in _requests(shop)) == ["access", "erasure"]
    assert len(shop.sent_to(ADA)) == sent  # opted out: nothing is sent to them
    # Their messages are stored for the team.
    [conversation] = shop.conversations()
    texts = [m["text"] for m in shop.messages(conversation["id"])]
    assert "Please delete my data" in texts


async def test_an_opted_out_web_visitor_has_their_request_recorded(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    _, key = await make_organisation_with_key(database)
    shop = "https://shop.example"
    with (
        live_server.client(headers={"authorization": f"Bearer {key}"}) as api,
        live_server.client() as widget,
    ):
        created = api.post("/api/v1/assistants", json={"name": "Mia", "allowed_origins": [shop]})
        assert created.status_code == 201, created.text
        started = widget.post(
            "/widget/v1/session",
            json={"widget_key": created.json()["widget_key"], "visitor_token": None},
            headers={"Origin": shop},
        )
        assert started.status_code == 200, started.text
        headers = {"Origin": shop, "Authorization": f"Bearer {started.json()['visitor_token']}"}

        def say(text: str, client_id: str) -> None:
            said = widget.post(
                "/widget/v1/messages", json={"text": text, "client_id": client_id}, headers=headers
            )
            assert said.status_code in (200, 201, 202), said.text

        say("Hello, do you ship abroad?", "client-0001")
        await run_jobs(database, settings)
        [conversation] = api.get("/api/v1/conversations").json()["items"]
        answered = len(
            api.get(f"/api/v1/conversations/{conversation['id']}/messages").json()["items"]
        )
        async with database.transaction() as session:
            await session.execute(
                update(Customer)
                .where(Customer.id == conversation["customer"]["id"])
                .values(opted_out_at=func.now(), opt_out_source="api")
            )
        say("Please delete my data", "client-0002")
        await run_jobs(database, settings)
        [request] = api.get("/api/v1/privacy/requests").json()["items"]
        assert (request["kind"], request["channel"]) == ("erasure", "webchat")
        assert request["customer_id"] == conversation["customer"]["id"]
        items = api.get(f"/api/v1/conversations/{conversation['id']}/messages").json()["items"]
        assert len(items) == answered + 1  # stored, not answered
        assert items[-1]["text"] == "Please delete my data"
