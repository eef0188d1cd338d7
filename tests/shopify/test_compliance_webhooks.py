"""customers/redact and customers/data_request: the shop's customer, matched by phone
number on every channel, erased by the one customer erasure, or exported into a report
e-mailed to the compliance address and tracked as a privacy request due in 30 days.
Every one audited with ids and counts only."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from cybergine.conversations.models import (
    ERASED_PREFIX,
    Channel,
    Customer,
    Direction,
    Message,
)
from cybergine.db.engine import Database
from cybergine.privacy.audit import AuditEvent
from cybergine.privacy.request_models import PrivacyRequest, RequestChannel, RequestKind
from cybergine.settings import Settings
from cybergine.shopify.models import DeliveryStatus
from tests.shopify.webhook_support import (
    ConnectedShop,
    connect_shop,
    deliver,
    deliveries,
    fixture_payload,
    shopify_settings,
)
from tests.support.conversations import make_conversation, make_customer, make_message
from tests.support.jobs import run_jobs
from tests.support.mailbox import emails_to
from tests.support.server import LiveServer

COMPLIANCE = "compliance@example.test"
# The fixtures' customer: "john@example.com", "555-625-1199".
THEIR_NUMBER = "5556251199"
THEIR_EMAIL = "john@example.com"
SAID = "My order 4411 never arrived at 12 Elm Street"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return shopify_settings(settings, shopify_compliance_email=COMPLIANCE)


async def _customer_with_history(
    database: Database, organisation_id: uuid.UUID, number: str, *, channel: Channel
) -> uuid.UUID:
    async with database.transaction() as session:
        if channel is Channel.WHATSAPP:
            customer = await make_customer(session, organisation_id, external_id=number)
        else:
            customer = await make_customer(
                session,
                organisation_id,
                channel=Channel.WEBCHAT,
                external_id=uuid.uuid4().hex,
                phone_number=f"+{number}",
            )
        conversation = await make_conversation(session, organisation_id, customer=customer)
        await make_message(session, conversation, text=SAID)
        await make_message(
            session, conversation, direction=Direction.OUTBOUND, text="Let me look into it."
        )
        return customer.id


async def _customer(database: Database, customer_id: uuid.UUID) -> Customer:
    async with database.transaction() as session:
        found = await session.get(Customer, customer_id)
        assert found is not None
        return found


async def _texts(database: Database, organisation_id: uuid.UUID) -> list[str | None]:
    async with database.transaction() as session:
        return list(
            (
                await session.execute(
                    select(Message.text).where(Message.organisation_id == organisation_id)
                )
            ).scalars()
        )


async def _audited(database: Database, action: str) -> list[AuditEvent]:
    async with database.transaction() as session:
        return list(
            (await session.execute(select(AuditEvent).where(AuditEvent.action == action)))
            .scalars()
            .all()
        )


def _send(server: LiveServer, connected: ConnectedShop, topic: str, fixture: str) -> str:
    webhook_id = str(uuid.uuid4())
    answer = deliver(
        server.url,
        fixture_payload(fixture, connected.domain),
        topic=topic,
        shop=connected.domain,
        webhook_id=webhook_id,
    )
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "received"}
    return webhook_id


async def test_customers_redact_erases_the_customer_on_every_channel_and_no_one_else(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    connected, other_shop = await connect_shop(database), await connect_shop(database)
    org = connected.organisation.id
    on_whatsapp = await _customer_with_history(
        database, org, THEIR_NUMBER, channel=Channel.WHATSAPP
    )
    on_webchat = await _customer_with_history(database, org, THEIR_NUMBER, channel=Channel.WEBCHAT)
    someone_else = await _customer_with_history(
        database, org, "4915112345678", channel=Channel.WHATSAPP
    )
    # The same number at another shop is another shop's customer: untouched.
    elsewhere = await _customer_with_history(
        database, other_shop.organisation.id, THEIR_NUMBER, channel=Channel.WHATSAPP
    )

    webhook_id = _send(live_server, connected, "customers/redact", "customers_redact_01.json")
    await run_jobs(database, settings)

    whatsapp = await _customer(database, on_whatsapp)
    assert whatsapp.erased
    assert whatsapp.phone_number is None
    assert whatsapp.external_id.startswith(ERASED_PREFIX)
    async with database.transaction() as session:
        # An erased web visitor's row gets a new id, so their token finds nothing.
        assert await session.get(Customer, on_webchat) is None
        still_named = await session.scalar(
            select(func.count())
            .select_from(Customer)
            .where(Customer.organisation_id == org, Customer.phone_number == f"+{THEIR_NUMBER}")
        )
    assert still_named == 0
    texts = await _texts(database, org)
    assert texts.count(SAID) == 1  # someone else's message only
    assert not (await _customer(database, someone_else)).erased
    assert not (await _customer(database, elsewhere)).erased
    assert await _texts(database, other_shop.organisation.id) == [SAID, "Let me look into it."]
    # The delivery named the customer: their erasure took it too.
    assert await deliveries(database, connected.shop.id) == []

    (event,) = await _audited(database, "shopify.customers_redact")
    assert event.organisation_id == org
    assert event.details["customers"] == 2
    assert event.details["webhook_id"] == webhook_id
    erased_events = await _audited(database, "customer.erased")
    assert len(erased_events) == 2
    trail = json.dumps([e.details for e in [event, *erased_events]])
    assert THEIR_EMAIL not in trail
    assert THEIR_NUMBER not in trail
    assert "625" not in trail


async def test_customers_redact_for_someone_unknown_changes_nothing_and_is_audited(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    connected = await connect_shop(database)
    kept = await _customer_with_history(
        database, connected.organisation.id, "4915112345678", channel=Channel.WHATSAPP
    )
    _send(live_server, connected, "customers/redact", "customers_redact_01.json")
    await run_jobs(database, settings)
    assert not (await _customer(database, kept)).erased
    (event,) = await _audited(database, "shopify.customers_redact")
    assert event.details["customers"] == 0
    (delivery,) = await deliveries(database, connected.shop.id)
    assert delivery.status is DeliveryStatus.PROCESSED


async def test_customers_data_request_emails_a_report_and_tracks_a_request_due_in_30_days(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    connected = await connect_shop(database)
    org = connected.organisation.id
    customer_id = await _customer_with_history(
        database, org, THEIR_NUMBER, channel=Channel.WHATSAPP
    )

    webhook_id = _send(
        live_server, connected, "customers/data_request", "customers_data_request_01.json"
    )
    await run_jobs(database, settings)

    async with database.transaction() as session:
        (request,) = (
            await session.execute(
                select(PrivacyRequest).where(PrivacyRequest.organisation_id == org)
            )
        ).scalars()
    assert request.kind is RequestKind.ACCESS
    assert request.channel is RequestChannel.SHOPIFY
    assert request.customer_id == customer_id
    assert request.due_at - request.received_at == timedelta(days=30)

    (email,) = await emails_to(database, COMPLIANCE)
    assert connected.domain in email.subject
    body = email.body_text or ""
    assert webhook_id in body
    assert "9999" in body  # Shopify's data request id
    assert "191167" in body  # Shopify's customer id
    assert THEIR_EMAIL in body
    assert str(request.id) in body
    assert f"{request.due_at:%Y-%m-%d}" in body
    # The customer's own export: their messages, as the export writes them.
    assert SAID in body
    assert '"format": "cybergine.customer-export/2"' in body
    # Not the data of anyone else.
    assert connected.owner_email not in body

    (event,) = await _audited(database, "shopify.customers_data_request")
    assert event.details == {
        "webhook_id": webhook_id,
        "customers": 1,
        "privacy_requests": [str(request.id)],
    }
    trail = json.dumps(
        [e.details for e in await _audited(database, "customer.exported")] + [event.details]
    )
    assert THEIR_EMAIL not in trail
    assert THEIR_NUMBER not in trail


async def test_a_data_request_for_someone_unknown_reports_that_nothing_is_held(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    connected = await connect_shop(database)
    _send(live_server, connected, "customers/data_request", "customers_data_request_01.json")
    await run_jobs(database, settings)
    (email,) = await emails_to(database, COMPLIANCE)
    assert "Cybergine holds\nno data about them" in (email.body_text or "")
    async with database.transaction() as session:
        opened = await session.scalar(select(PrivacyRequest.id))
    assert opened is None
    (event,) = await _audited(database, "shopify.customers_data_request")
    assert event.details["customers"] == 0


async def test_a_redelivered_data_request_is_reported_once(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    connected = await connect_shop(database)
    await _customer_with_history(
        database, connected.organisation.id, THEIR_NUMBER, channel=Channel.WHATSAPP
    )
    body = fixture_payload("customers_data_request_01.json", connected.domain)
    webhook_id = str(uuid.uuid4())
    for _ in range(3):
        deliver(
            live_server.url,
            body,
            topic="customers/data_request",
            shop=connected.domain,
            webhook_id=webhook_id,
        )
    await run_jobs(database, settings)
    assert len(await emails_to(database, COMPLIANCE)) == 1


async def test_compliance_topics_still_run_after_the_uninstall(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    connected = await connect_shop(database)
    kept_before = await _customer_with_history(
        database, connected.organisation.id, THEIR_NUMBER, channel=Channel.WHATSAPP
    )
    _send(live_server, connected, "app/uninstalled", "app_uninstalled_01.json")
    await run_jobs(database, settings)
    _send(live_server, connected, "customers/redact", "customers_redact_01.json")
    await run_jobs(database, settings)
    assert (await _customer(database, kept_before)).erased
