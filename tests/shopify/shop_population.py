"""A shop's organisation with rows in as many tables as its surfaces fill: an assistant
and its widget, knowledge (chunks and vectors), the catalogue (products, variants,
options, images, search rows), customers on web chat and WhatsApp with conversations,
messages and a media file, a privacy request, webhook deliveries and queued jobs; and a
count of its rows in every table of the schema."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy import Table, func, select, text

from cybergine.db.base import Base
from cybergine.db.engine import Database
from cybergine.settings import Settings
from tests.shopify.webhook_support import (
    ConnectedShop,
    connect_shop,
    deliver,
    fixture_payload,
)
from tests.support.catalog import shopify_products
from tests.support.conversations import (
    make_attachment,
    make_conversation,
    make_customer,
    make_message,
    make_whatsapp_number,
)
from tests.support.factories import make_api_key
from tests.support.jobs import run_jobs
from tests.support.server import LiveServer

STOREFRONT = "https://storefront.example"
CUSTOMER_NUMBER = "5556251199"  # the compliance fixtures' customer
SAID = "Please send it to 12 Elm Street"
# Tables that keep an organisation's id after it is gone, by design: the audit trail
# (7 years, policy §11), whose entries hold ids and counts only.
KEPT_BY_DESIGN = frozenset({"audit_events"})


@dataclass(frozen=True)
class PopulatedShop:
    connected: ConnectedShop
    api_key: str

    @property
    def organisation_id(self) -> uuid.UUID:
        return self.connected.organisation.id


async def populate(server: LiveServer, database: Database, settings: Settings) -> PopulatedShop:
    connected = await connect_shop(database)
    key = await make_api_key(database, connected.organisation.id)
    with server.client(headers={"authorization": f"Bearer {key}"}) as api:
        assistant = api.post(
            "/api/v1/assistants",
            json={
                "name": "Mia",
                "allowed_origins": [STOREFRONT],
                "widget": {"colour": "#00aa77", "title": "Ask Mia"},
            },
        )
        assert assistant.status_code == 201, assistant.text
        knowledge = api.post(
            "/api/v1/knowledge/qa",
            json={"question": "Do you ship abroad?", "answer": "We ship to 30 countries."},
        )
        assert knowledge.status_code == 202, knowledge.text
        for product in shopify_products():
            created = api.post("/api/v1/catalog/products", json=product)
            assert created.status_code == 201, created.text
        widget_key = assistant.json()["widget_key"]
        assistant_id = uuid.UUID(assistant.json()["id"])
    await run_jobs(database, settings)
    _chat_on_the_widget(server, widget_key)
    async with database.transaction() as session:
        number = await make_whatsapp_number(session, connected.organisation.id, assistant_id)
        customer = await make_customer(
            session, connected.organisation.id, external_id=CUSTOMER_NUMBER
        )
        conversation = await make_conversation(
            session, connected.organisation.id, customer=customer, whatsapp_number_id=number.id
        )
        message = await make_message(session, conversation, text=SAID)
        await make_attachment(session, message)
    for job in ("shopify:sync", "shopify:sync_content"):
        await queue_job(database, job, shop_id=str(connected.shop.id))
    await queue_job(database, "shopify:sync", organisation_id=str(connected.organisation.id))
    answer = deliver(
        server.url,
        fixture_payload("customers_data_request_01.json", connected.domain),
        topic="customers/data_request",
        shop=connected.domain,
    )
    assert answer.status_code == 200, answer.text
    await run_jobs(database, settings)
    return PopulatedShop(connected, key)


def _chat_on_the_widget(server: LiveServer, widget_key: str) -> None:
    started = httpx.post(
        f"{server.url}/widget/v1/session",
        json={"widget_key": widget_key, "visitor_token": None},
        headers={"Origin": STOREFRONT},
    )
    assert started.status_code == 200, started.text
    said = httpx.post(
        f"{server.url}/widget/v1/messages",
        json={"text": "Do you ship abroad?", "client_id": uuid.uuid4().hex},
        headers={
            "Origin": STOREFRONT,
            "Authorization": f"Bearer {started.json()['visitor_token']}",
        },
    )
    assert said.status_code in (200, 201, 202), said.text


async def queue_job(database: Database, task: str, **args: str) -> int:
    """A job as another part of the app queues it, due later so no worker takes it now."""
    async with database.transaction() as session:
        job_id = await session.scalar(
            text(
                "INSERT INTO procrastinate_jobs (queue_name, task_name, args, scheduled_at) "
                "VALUES ('default', :task, CAST(:args AS jsonb), :at) RETURNING id"
            ),
            {"task": task, "args": json.dumps(args), "at": datetime.now(UTC) + timedelta(hours=1)},
        )
    return int(job_id)


def _owner_columns(table: Table) -> list[str]:
    """The columns of ``table`` that name an organisation."""
    return [
        column.name
        for column in table.c
        if column.name == "organisation_id"
        or any(fk.column.table.name == "organisations" for fk in column.foreign_keys)
        or (table.name == "organisations" and column.name == "id")
    ]


async def rows_of(database: Database, organisation_id: uuid.UUID) -> dict[str, int]:
    """How many rows name the organisation, in every table of the schema (by any column
    that refers to an organisation) and among the queued jobs (by any argument)."""
    counts: dict[str, int] = {}
    async with database.transaction() as session:
        for table in Base.metadata.sorted_tables:
            for column in _owner_columns(table):
                found = await session.scalar(
                    select(func.count())
                    .select_from(table)
                    .where(table.c[column] == organisation_id)
                )
                counts[f"{table.name}.{column}"] = int(found or 0)
        counts["procrastinate_jobs.args"] = int(
            await session.scalar(
                text("SELECT count(*) FROM procrastinate_jobs WHERE CAST(args AS text) LIKE :id"),
                {"id": f"%{organisation_id}%"},
            )
            or 0
        )
    return counts


async def jobs_naming(database: Database, value: str) -> int:
    async with database.transaction() as session:
        return int(
            await session.scalar(
                text("SELECT count(*) FROM procrastinate_jobs WHERE CAST(args AS text) LIKE :v"),
                {"v": f"%{value}%"},
            )
            or 0
        )
