"""A shop on WhatsApp for end-to-end tests: an organisation with an assistant, a small
knowledge base, a number registered through the API, and Meta's side played by the Graph
API simulator over real HTTP (sends land there; its status webhooks come back to us)."""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import func, select

from cybergine.channels.whatsapp.models import WebhookEvent
from cybergine.channels.whatsapp.simulator import GraphSimulator, webhook_request
from cybergine.conversations.models import Direction, Message, MessageStatus, Sender
from cybergine.db.engine import Database
from cybergine.settings import Settings
from tests.support.conversations import digits
from tests.support.factories import make_organisation_with_key
from tests.support.jobs import run_jobs
from tests.support.server import LiveServer

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "whatsapp"
APP_SECRET = "meta-app-secret-for-tests-0123456789"
VERIFY_TOKEN = "verify-token-for-tests-0123456789"
ACCESS_TOKEN = "EAAG-access-token-for-tests-0123456789"

RETURNS_QA = {
    "question": "What is your return policy?",
    "answer": "You can return any item within 30 days of delivery for a full refund.",
}
SHIPPING_QA = {
    "question": "How long does shipping take?",
    "answer": "Orders ship within 2 business days and arrive in 3 to 5 days in the EU.",
}


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return loaded


def readdress(body: Mapping[str, Any], phone_number_id: str, *, now: bool = True) -> dict[str, Any]:
    """A real payload example sent to our number; ``now``: its messages are from now (the
    examples are years old, outside WhatsApp's 24-hour window)."""
    body = copy.deepcopy(dict(body))
    for entry in body.get("entry", []):
        for change in entry.get("changes", []):
            value = change.get("value", {})
            if isinstance(value.get("metadata"), dict):
                value["metadata"]["phone_number_id"] = phone_number_id
            for message in value.get("messages", []) if now else []:
                message["timestamp"] = str(int(time.time()))
    return body


@dataclass
class Shop:
    api: httpx.Client
    webhook: httpx.Client
    graph: GraphSimulator
    database: Database
    settings: Settings
    organisation_id: uuid.UUID
    assistant_id: str
    number_id: str
    phone_number_id: str
    customers: dict[str, str] = field(default_factory=dict)

    def close(self) -> None:
        self.api.close()
        self.webhook.close()

    def post(self, body: Mapping[str, Any], *, secret: str = APP_SECRET) -> httpx.Response:
        raw, headers = webhook_request(body, secret)
        return self.webhook.post("/webhooks/whatsapp", content=raw, headers=headers)

    def says(self, text: str, *, wa_id: str = "15550001111", message_id: str | None = None) -> str:
        """The customer writes; returns the message's wamid."""
        body = self.graph.inbound_webhook(
            self.phone_number_id, wa_id, text, name="Ada", message_id=message_id
        )
        response = self.post(body)
        assert response.status_code == 200, response.text
        wamid: str = body["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
        return wamid

    async def work(self) -> None:
        """Run jobs until none a worker would take is left: a reply defers its send, which
        can only start once the reply's job (same conversation lock) has finished."""
        await run_jobs(self.database, self.settings)

    def sent_to(self, wa_id: str = "15550001111") -> list[str]:
        return [m.text or "" for m in self.graph.sent if m.to == wa_id]

    def conversations(self, **params: Any) -> list[dict[str, Any]]:
        response = self.api.get("/api/v1/conversations", params=params)
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    def messages(self, conversation_id: str) -> list[dict[str, Any]]:
        response = self.api.get(f"/api/v1/conversations/{conversation_id}/messages")
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items

    async def count(self, model: type[Message] | type[WebhookEvent]) -> int:
        async with self.database.transaction() as session:
            return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def open_shop(
    live_server: LiveServer,
    database: Database,
    settings: Settings,
    graph: GraphSimulator,
    *,
    assistant: Mapping[str, Any] | None = None,
    number: Mapping[str, Any] | None = None,
) -> Shop:
    organisation, key = await make_organisation_with_key(database)
    api = live_server.client(headers={"authorization": f"Bearer {key}"})
    created = api.post("/api/v1/assistants", json={"name": "Mia", **(assistant or {})})
    assert created.status_code == 201, created.text
    assistant_id = created.json()["id"]
    for qa in (RETURNS_QA, SHIPPING_QA):
        response = api.post("/api/v1/knowledge/qa", json=qa)
        assert response.status_code == 202, response.text
    phone_number_id = digits()
    graph.add_number(phone_number_id, ACCESS_TOKEN)
    registered = api.post(
        "/api/v1/channels/whatsapp",
        json={
            "assistant_id": assistant_id,
            "phone_number_id": phone_number_id,
            "waba_id": digits(),
            "display_phone_number": "+1 555 010 0200",
            "access_token": ACCESS_TOKEN,
            **(number or {}),
        },
    )
    assert registered.status_code == 201, registered.text
    graph.webhook_url = f"{live_server.url}/webhooks/whatsapp"
    graph.app_secret = APP_SECRET
    shop = Shop(
        api=api,
        webhook=live_server.client(),
        graph=graph,
        database=database,
        settings=settings,
        organisation_id=organisation.id,
        assistant_id=assistant_id,
        number_id=registered.json()["id"],
        phone_number_id=phone_number_id,
    )
    await shop.work()  # index the knowledge base
    return shop


def answer_to(inbound: Message, text: str, status: MessageStatus, **fields: Any) -> Message:
    """The assistant's answer to ``inbound`` as a reply job writes it (its id the next
    after the question's), in ``status``; for a test to add where a worker stopped."""
    return Message(
        id=uuid.UUID(int=inbound.id.int + 1),
        organisation_id=inbound.organisation_id,
        conversation_id=inbound.conversation_id,
        direction=Direction.OUTBOUND,
        sender=Sender.ASSISTANT,
        type="text",
        text=text,
        status=status,
        **fields,
    )
