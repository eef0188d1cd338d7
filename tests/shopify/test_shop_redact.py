"""shop/redact: 48 hours after the uninstall, everything of the shop is erased for good,
proven by counting the rows that name its organisation in every table of the schema and
among the queued jobs, before and after; another shop's rows stay as they were, and the
audit trail keeps that it happened, naming no one."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from cybergine.accounts.models import Membership, Organisation, Role, User
from cybergine.db.engine import Database
from cybergine.privacy.audit import AuditEvent
from cybergine.settings import Settings
from cybergine.shopify.models import ShopifyShop
from tests.shopify.shop_population import (
    CUSTOMER_NUMBER,
    KEPT_BY_DESIGN,
    SAID,
    PopulatedShop,
    jobs_naming,
    populate,
    rows_of,
)
from tests.shopify.webhook_support import (
    connect_shop,
    deliver,
    delivery_count,
    fixture_payload,
    shopify_settings,
)
from tests.support.factories import add_member
from tests.support.jobs import run_jobs
from tests.support.server import LiveServer

# What the shop's surfaces fill; the count below must find rows in each before.
FILLED = (
    "organisations.id",
    "memberships.organisation_id",
    "api_keys.organisation_id",
    "assistants.organisation_id",
    "kb_items.organisation_id",
    "kb_chunks.organisation_id",
    "catalog_products.organisation_id",
    "catalog_variants.organisation_id",
    "catalog_images.organisation_id",
    "catalog_product_options.organisation_id",
    "customers.organisation_id",
    "conversations.organisation_id",
    "messages.organisation_id",
    "message_attachments.organisation_id",
    "whatsapp_numbers.organisation_id",
    "privacy_requests.organisation_id",
    "shopify_shops.organisation_id",
    "shopify_webhook_deliveries.organisation_id",
    "procrastinate_jobs.args",
)


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return shopify_settings(settings)


async def _redact(server: LiveServer, database: Database, settings: Settings, domain: str) -> None:
    """The uninstall, and Shopify's shop/redact (48 hours later) once it is processed."""
    for topic, fixture in (
        ("app/uninstalled", "app_uninstalled_01.json"),
        ("shop/redact", "shop_redact_01.json"),
    ):
        answer = deliver(server.url, fixture_payload(fixture, domain), topic=topic, shop=domain)
        assert answer.status_code == 200, answer.text
        await run_jobs(database, settings)


async def test_shop_redact_leaves_no_row_of_the_shop_and_every_other_row_as_it_was(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    shop = await populate(live_server, database, settings)
    other = await populate(live_server, database, settings)
    # Someone on both shops' teams keeps their account; the owner of the erased one does not.
    both, _ = await add_member(database, shop.organisation_id, Role.ADMIN)
    async with database.transaction() as session:
        session.add(
            Membership(organisation_id=other.organisation_id, user_id=both.id, role=Role.AGENT)
        )
    before = await rows_of(database, shop.organisation_id)
    others_before = await rows_of(database, other.organisation_id)
    empty_before = [name for name in FILLED if before[name] == 0]
    assert empty_before == [], "the population did not reach these tables"

    await _redact(live_server, database, settings, shop.connected.domain)

    after = await rows_of(database, shop.organisation_id)
    left = {
        name: rows
        for name, rows in after.items()
        if rows and name.partition(".")[0] not in KEPT_BY_DESIGN
    }
    assert left == {}
    assert await jobs_naming(database, str(shop.connected.shop.id)) == 0
    assert await jobs_naming(database, shop.connected.domain) == 0
    others_after = await rows_of(database, other.organisation_id)
    # The API usage log records the test's own calls, written a moment after each one.
    for rows in (others_before, others_after):
        rows.pop("api_usage_log.organisation_id", None)
    assert others_after == others_before
    async with database.transaction() as session:
        assert await session.get(Organisation, shop.organisation_id) is None
        assert await session.get(ShopifyShop, shop.connected.shop.id) is None
        assert await session.get(Organisation, other.organisation_id) is not None
        owners = await session.scalar(
            select(func.count()).select_from(User).where(User.email == shop.connected.owner_email)
        )
        assert owners == 0
        assert await session.get(User, both.id) is not None
    await _the_trail_says_so_and_names_no_one(database, shop)


async def _the_trail_says_so_and_names_no_one(database: Database, shop: PopulatedShop) -> None:
    async with database.transaction() as session:
        events = list(
            (
                await session.execute(
                    select(AuditEvent).where(AuditEvent.organisation_id == shop.organisation_id)
                )
            ).scalars()
        )
    actions = {event.action for event in events}
    assert {"shopify.shop.uninstalled", "organisation.erased", "shopify.shop.erased"} <= actions
    trail = json.dumps([[e.action, e.target_id, e.details] for e in events])
    for personal in (shop.connected.owner_email, CUSTOMER_NUMBER, SAID, "john@example.com"):
        assert personal not in trail


async def test_shop_redact_for_a_shop_installed_again_erases_nothing(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    connected = await connect_shop(database)
    answer = deliver(
        live_server.url,
        fixture_payload("shop_redact_01.json", connected.domain),
        topic="shop/redact",
        shop=connected.domain,
    )
    assert answer.status_code == 200
    await run_jobs(database, settings)
    async with database.transaction() as session:
        assert await session.get(Organisation, connected.organisation.id) is not None
        skipped = await session.scalar(
            select(AuditEvent.details).where(AuditEvent.action == "shopify.shop.redact_skipped")
        )
    assert skipped is not None
    assert skipped["reason"] == "installed"


async def test_a_redelivered_shop_redact_after_the_erasure_is_acknowledged(
    live_server: LiveServer, database: Database, settings: Settings
) -> None:
    connected = await connect_shop(database)
    await _redact(live_server, database, settings, connected.domain)
    again = deliver(
        live_server.url,
        fixture_payload("shop_redact_01.json", connected.domain),
        topic="shop/redact",
        shop=connected.domain,
    )
    assert again.status_code == 200
    assert again.json() == {"status": "ignored"}
    assert await delivery_count(database) == 0
