"""Billing: subscribing through Shopify's Billing API (the simulator's), the subscription's
status kept in step by app_subscriptions/update, and the plan's monthly allowance, beyond
which new conversations go to the team with the reason in the inbox."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from cybergine.conversations.models import Conversation, ConversationState
from cybergine.db.engine import Database
from cybergine.errors import InvalidInput
from cybergine.privacy.audit import AuditEvent
from cybergine.settings import Settings
from cybergine.shopify import billing
from cybergine.shopify.models import ShopifyShop, ShopStatus
from cybergine.shopify.plans import FREE, PLANS
from cybergine.shopify.simulator import ShopifySimulator
from tests.shopify.app_support import SHOP, connected_shop, load_shop, settings, shopify
from tests.support import whatsapp as whatsapp_support
from tests.support.conversations import make_conversation
from tests.support.jobs import run_jobs
from tests.support.server import TLS, LiveServer

__all__ = ["settings", "shopify"]


def test_plans_are_data_with_one_free_plan_and_growing_allowances() -> None:
    assert [plan for plan in PLANS if plan.free] == [FREE]
    assert len({plan.name for plan in PLANS}) == len(PLANS)
    allowances = [plan.conversations_per_month for plan in PLANS]
    assert allowances == sorted(allowances)
    assert all(plan.interval in ("EVERY_30_DAYS", "ANNUAL") for plan in PLANS)
    with pytest.raises(InvalidInput):
        billing.plan_named("Platinum")


def test_charges_are_test_charges_outside_production(settings: Settings) -> None:
    assert billing.test_charges(settings) is True
    production = settings.model_copy(update={"behind_https": True, "shopify_test_charges": None})
    assert billing.test_charges(production) is False
    forced = production.model_copy(update={"shopify_test_charges": True})
    assert billing.test_charges(forced) is True


# --- the subscription, end to end --------------------------------------------------------


@pytest.fixture
def http(live_server: LiveServer, shopify: ShopifySimulator) -> Iterator[httpx.Client]:
    shopify.webhooks.url = f"{live_server.url}/webhooks/shopify"
    with httpx.Client(base_url=live_server.url, timeout=20, verify=TLS) as client:
        yield client


def bearer(sim: ShopifySimulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {sim.session_token(SHOP)}", "Accept": "application/json"}


async def wait_for_delivery(sim: ShopifySimulator, topic: str, count: int) -> None:
    deadline = asyncio.get_running_loop().time() + 15
    while sum(1 for d in sim.webhooks.deliveries if d.topic == topic) < count:
        assert asyncio.get_running_loop().time() < deadline, "no webhook delivered"
        await asyncio.sleep(0.02)


async def shop_row(database: Database) -> ShopifyShop:
    async with database.transaction() as session:
        shop = await session.scalar(select(ShopifyShop).where(ShopifyShop.shop_domain == SHOP))
        assert shop is not None
        return shop


async def test_subscribing_goes_through_shopifys_confirmation_and_its_webhook(
    http: httpx.Client,
    database: Database,
    settings: Settings,
    shopify: ShopifySimulator,
) -> None:
    created = http.post("/shopify/api/subscribe", headers=bearer(shopify), json={"plan": "Starter"})
    assert created.status_code == 200, created.text
    confirmation = created.json()["confirmation_url"]
    assert confirmation.startswith(shopify.shop_url(SHOP))
    [subscription] = shopify.shop(SHOP).subscriptions.values()
    assert subscription.name == "Starter"
    assert subscription.test is True  # not production
    assert str(subscription.price) == "19.00"
    assert (
        subscription.return_url == f"{shopify.shop_url(SHOP)}/admin/apps/{settings.shopify_api_key}"
    )
    pending = await shop_row(database)
    assert (pending.plan_name, pending.subscription_status) == ("Starter", "PENDING")
    status = http.get("/shopify/api/status", headers=bearer(shopify)).json()
    assert status["billing"]["plan"] == "Free"  # not paid for until Shopify says ACTIVE

    # The merchant approves on Shopify's page; Shopify tells the app by webhook.
    with httpx.Client(verify=TLS, follow_redirects=False) as merchant:
        approved = merchant.post(confirmation, data={"decision": "approve"})
    assert approved.status_code == 303
    await wait_for_delivery(shopify, "app_subscriptions/update", 1)
    await run_jobs(database, settings)
    active = await shop_row(database)
    assert (active.plan_name, active.subscription_status) == ("Starter", "ACTIVE")
    status = http.get("/shopify/api/status", headers=bearer(shopify)).json()
    assert status["billing"]["plan"] == "Starter"
    assert status["billing"]["conversations_per_month"] == 1000

    # An upgrade: the new one active, the old one cancelled by Shopify, in either order.
    upgrade = http.post("/shopify/api/subscribe", headers=bearer(shopify), json={"plan": "Growth"})
    assert upgrade.status_code == 200
    still = await shop_row(database)
    assert (still.plan_name, still.subscription_status) == ("Starter", "ACTIVE")
    with httpx.Client(verify=TLS, follow_redirects=False) as merchant:
        merchant.post(upgrade.json()["confirmation_url"], data={"decision": "approve"})
    await wait_for_delivery(shopify, "app_subscriptions/update", 3)
    await run_jobs(database, settings)
    grown = await shop_row(database)
    assert (grown.plan_name, grown.subscription_status) == ("Growth", "ACTIVE")


def test_the_free_plan_and_unknown_plans_are_refused_readably(
    http: httpx.Client, shopify: ShopifySimulator
) -> None:
    for plan, words in (("Free", "needs no subscription"), ("Platinum", "No plan is called")):
        refused = http.post("/shopify/api/subscribe", headers=bearer(shopify), json={"plan": plan})
        assert refused.status_code == 422
        assert words in refused.json()["detail"]
    assert shopify.shop(SHOP).subscriptions == {}


# --- the webhook's rules ---------------------------------------------------------------


def update(subscription_id: str, name: str, status: str) -> dict[str, Any]:
    return {
        "app_subscription": {
            "admin_graphql_api_id": subscription_id,
            "name": name,
            "status": status,
            "admin_graphql_api_shop_id": "gid://shopify/Shop/1",
            "created_at": "2026-12-01T10:00:00Z",
            "updated_at": "2026-12-01T10:00:00Z",
            "currency": "USD",
            "capped_amount": None,
        }
    }


async def deliver(database: Database, shop: ShopifyShop, payload: dict[str, Any]) -> ShopifyShop:
    async with database.transaction() as session:
        await billing.handle_app_subscription_update(
            session, shop, billing.APP_SUBSCRIPTIONS_UPDATE, payload, str(uuid.uuid4())
        )
    return await load_shop(database, shop.id)


@pytest.mark.parametrize("status", ["CANCELLED", "DECLINED", "EXPIRED", "FROZEN"])
async def test_a_subscription_that_ends_returns_the_shop_to_the_free_plan(
    database: Database, settings: Settings, shopify: ShopifySimulator, status: str
) -> None:
    shop = await connected_shop(database, settings, shopify)
    first = "gid://shopify/AppSubscription/1"
    active = await deliver(database, shop, update(first, "Growth", "ACTIVE"))
    assert billing.current_plan(active).name == "Growth"
    ended = await deliver(database, shop, update(first, "Growth", status))
    assert ended.subscription_status == status
    assert billing.current_plan(ended) == FREE
    async with database.transaction() as session:
        details = (
            await session.scalars(
                select(AuditEvent.details).where(
                    AuditEvent.action == "shopify.subscription.updated",
                    AuditEvent.organisation_id == shop.organisation_id,
                )
            )
        ).all()
    assert details == [
        {"plan": "Growth", "status": "ACTIVE"},
        {"plan": "Growth", "status": status},
    ]


async def test_the_end_of_a_replaced_subscription_leaves_the_active_one(
    database: Database, settings: Settings, shopify: ShopifySimulator
) -> None:
    shop = await connected_shop(database, settings, shopify)
    old, new = "gid://shopify/AppSubscription/1", "gid://shopify/AppSubscription/2"
    await deliver(database, shop, update(old, "Starter", "ACTIVE"))
    await deliver(database, shop, update(new, "Growth", "PENDING"))  # another's, ignored
    after = await deliver(database, shop, update(new, "Growth", "ACTIVE"))
    assert (after.plan_name, after.subscription_status) == ("Growth", "ACTIVE")
    late = await deliver(database, shop, update(old, "Starter", "CANCELLED"))
    assert (late.plan_name, late.subscription_status, late.subscription_id) == (
        "Growth",
        "ACTIVE",
        new,
    )


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"app_subscription": "x"},
        update("gid://x/1", "Growth", "PAUSED"),
        update("", "G", "ACTIVE"),
    ],
)
async def test_a_payload_not_understood_changes_nothing(
    database: Database, settings: Settings, shopify: ShopifySimulator, payload: dict[str, Any]
) -> None:
    shop = await connected_shop(database, settings, shopify)
    after = await deliver(database, shop, payload)
    assert (after.plan_name, after.subscription_status) == (None, None)


# --- the allowance ------------------------------------------------------------------------


async def test_conversations_beyond_the_allowance_go_to_the_team_with_the_reason(
    database: Database, settings: Settings, shopify: ShopifySimulator
) -> None:
    shop = await connected_shop(database, settings, shopify)
    organisation_id = shop.organisation_id
    async with database.transaction() as session:
        within = [
            await make_conversation(session, organisation_id)
            for _ in range(FREE.conversations_per_month)
        ]
    async with database.transaction() as session:
        beyond = await make_conversation(session, organisation_id)
    async with database.transaction() as session:
        assert not await billing.beyond_allowance(session, organisation_id, within[0].id)
        assert not await billing.beyond_allowance(session, organisation_id, within[-1].id)
        assert await billing.beyond_allowance(session, organisation_id, beyond.id)
        used = await billing.allowance(session, await load_shop(database, shop.id))
        assert used.reached
        assert used.used == FREE.conversations_per_month + 1
    async with database.transaction() as session:
        assert await billing.hand_to_team(
            session,
            organisation_id=organisation_id,
            conversation_id=beyond.id,
            public_url=settings.public_url,
        )
    async with database.transaction() as session:
        handed = await session.get(Conversation, beyond.id)
        assert handed is not None
        assert handed.state == ConversationState.WAITING_FOR_HUMAN
        assert handed.handoff_reason is not None
        assert "Free plan" in handed.handoff_reason
        assert f"{FREE.conversations_per_month} new conversations a month" in handed.handoff_reason
        # Handed once: a second call changes nothing.
        assert not await billing.hand_to_team(
            session,
            organisation_id=organisation_id,
            conversation_id=beyond.id,
            public_url=settings.public_url,
        )

    # A paid plan's larger allowance takes the same conversation back within it.
    paid = await deliver(
        database, shop, update("gid://shopify/AppSubscription/9", "Starter", "ACTIVE")
    )
    assert billing.current_plan(paid).name == "Starter"
    async with database.transaction() as session:
        assert not await billing.beyond_allowance(session, organisation_id, beyond.id)


async def test_an_organisation_without_a_shop_has_no_allowance(database: Database) -> None:
    from tests.support.factories import make_organisation

    organisation, _ = await make_organisation(database)
    async with database.transaction() as session:
        conversation = await make_conversation(session, organisation.id)
    async with database.transaction() as session:
        assert not await billing.beyond_allowance(session, organisation.id, conversation.id)


def test_the_month_starts_at_midnight_utc_on_the_first() -> None:
    assert billing.month_start(datetime(2026, 12, 31, 23, 59, tzinfo=UTC)) == datetime(
        2026, 12, 1, tzinfo=UTC
    )


async def test_the_assistant_leaves_a_conversation_beyond_the_allowance_to_people(
    shop: whatsapp_support.Shop, database: Database
) -> None:
    """End to end on WhatsApp: the shop's organisation has used its month, a new customer
    writes, and the reply job hands the conversation to the team instead of answering."""
    async with database.transaction() as session:
        session.add(
            ShopifyShop(
                organisation_id=shop.organisation_id,
                shop_domain=SHOP,
                status=ShopStatus.INSTALLED,
                access_token="shpat_unused",
            )
        )
        for _ in range(FREE.conversations_per_month):
            await make_conversation(session, shop.organisation_id)
    shop.says("What is your return policy?", wa_id="15550002222")
    await shop.work()
    assert shop.sent_to("15550002222") == []
    [conversation] = [
        c for c in shop.conversations() if c["state"] == ConversationState.WAITING_FOR_HUMAN
    ]
    assert "Free plan" in conversation["handoff_reason"]
    # The customer's words are kept for the team.
    [message] = shop.messages(conversation["id"])
    assert message["text"] == "What is your return policy?"


async def test_the_merchant_is_told_when_the_allowance_is_used(
    http: httpx.Client, live_server: LiveServer, database: Database, shopify: ShopifySimulator
) -> None:
    assert http.get("/shopify/api/status", headers=bearer(shopify)).status_code == 200
    installed = await shop_row(database)
    async with database.transaction() as session:
        for _ in range(FREE.conversations_per_month):
            await make_conversation(session, installed.organisation_id)
    status = http.get("/shopify/api/status", headers=bearer(shopify)).json()["billing"]
    assert status["limit_reached"] is True
    assert status["conversations_this_month"] == FREE.conversations_per_month
    # The dashboard's overview says it too, with where the conversations went.
    link = http.post("/shopify/api/dashboard-link", headers=bearer(shopify)).json()["url"]
    with httpx.Client(verify=TLS, headers={"accept": "text/html"}) as browser:
        overview = browser.get(link, follow_redirects=True)
    assert overview.status_code == 200
    assert "This month's allowance is used" in overview.text
    assert "leaves new conversations to your team" in overview.text
    assert f"Free plan: {FREE.conversations_per_month} of" in overview.text


async def test_subscribing_survives_a_token_shopify_ended_early(
    http: httpx.Client, database: Database, shopify: ShopifySimulator
) -> None:
    assert http.get("/shopify/api/status", headers=bearer(shopify)).status_code == 200
    stale = (await shop_row(database)).access_token
    assert stale is not None
    shopify.tokens.expire(stale)
    created = http.post("/shopify/api/subscribe", headers=bearer(shopify), json={"plan": "Growth"})
    assert created.status_code == 200, created.text
    assert [s.name for s in shopify.shop(SHOP).subscriptions.values()] == ["Growth"]
    assert (await shop_row(database)).access_token != stale
