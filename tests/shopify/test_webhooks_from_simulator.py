"""End to end with the Shopify simulator's webhook sender, which signs and delivers as
Shopify does (retrying what is not acknowledged): the uninstall hides the shop, a
customer's data request and erasure reach them, shop/redact erases the shop, and every
delivery is acknowledged with a 2xx once and only once stored."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import select

from cybergine.accounts.models import Organisation, OrganisationStatus
from cybergine.conversations.models import Customer
from cybergine.db.engine import Database
from cybergine.settings import Settings
from cybergine.shopify.simulator import ShopifySimulator
from cybergine.shopify.simulator.webhooks import compliance_payload
from tests.shopify.webhook_support import (
    SECRET,
    connect_shop,
    deliveries,
    shopify_settings,
)
from tests.support.conversations import make_conversation, make_customer, make_message
from tests.support.jobs import run_jobs
from tests.support.mailbox import emails_to
from tests.support.server import LiveServer

COMPLIANCE = "compliance@example.test"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return shopify_settings(settings, shopify_compliance_email=COMPLIANCE)


@pytest.fixture
def simulator(live_server: LiveServer) -> Iterator[ShopifySimulator]:
    with ShopifySimulator(
        client_id="cybergine-client-id",
        client_secret=SECRET,
        webhook_url=f"{live_server.url}/webhooks/shopify",
    ) as sim:
        yield sim


async def test_the_simulators_webhooks_take_a_shop_from_uninstall_to_erasure(
    simulator: ShopifySimulator, database: Database, settings: Settings
) -> None:
    connected = await connect_shop(database)
    shop = simulator.add_shop(connected.domain)
    async with database.transaction() as session:
        customer = await make_customer(session, connected.organisation.id, external_id="5556251199")
        conversation = await make_conversation(
            session, connected.organisation.id, customer=customer
        )
        await make_message(session, conversation, text="Where is my parcel?")

    simulator.uninstall(connected.domain)
    simulator.webhooks.wait_idle()
    await run_jobs(database, settings)
    async with database.transaction() as session:
        organisation = await session.get(Organisation, connected.organisation.id)
        assert organisation is not None
        assert organisation.status is OrganisationStatus.SHOP_UNINSTALLED

    for topic in ("customers/data_request", "customers/redact"):
        simulator.webhooks.send(shop, topic, compliance_payload(shop, topic, {}))
        simulator.webhooks.wait_idle()
        await run_jobs(database, settings)
    (report,) = await emails_to(database, COMPLIANCE)
    assert "Where is my parcel?" in (report.body_text or "")
    async with database.transaction() as session:
        erased = await session.get(Customer, customer.id)
        assert erased is not None
        assert erased.erased

    simulator.webhooks.send(shop, "shop/redact", compliance_payload(shop, "shop/redact", {}))
    simulator.webhooks.wait_idle()
    await run_jobs(database, settings)
    async with database.transaction() as session:
        assert await session.get(Organisation, connected.organisation.id) is None
        assert await session.scalar(select(Customer.id).where(Customer.id == customer.id)) is None
    assert await deliveries(database) == []

    sent = simulator.webhooks.deliveries
    assert [d.topic for d in sent] == [
        "app/uninstalled",
        "customers/data_request",
        "customers/redact",
        "shop/redact",
    ]
    assert all(d.delivered and d.attempts == 1 for d in sent), sent
